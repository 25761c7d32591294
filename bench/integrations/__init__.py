"""Optional services (step: a sweep's rows -> W&B); none of them ever costs a row."""
