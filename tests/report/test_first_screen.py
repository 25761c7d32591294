"""The report's first screen in a real browser: headless Chromium at 1,400 x 900 shows the overview table with a
✓/✗ for every config's target, and no part of the page (detail tables unfolded) needs sideways scrolling."""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from bench.report.page import write_report
from tests.results_fixtures import make_row, write_csv

pytestmark = pytest.mark.integration
BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
WIDTH, HEIGHT = 1400, 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--remote-debugging-pipe")
# What the page shows at 1,400 x 900: its width, each overview row's text and bottom edge; then, every detail
# table unfolded, the width again.
MEASURE = """(() => {
  const overview = document.querySelector('table.overview');
  const rows = [...overview.querySelectorAll('tbody tr')].map(r => ({text: r.innerText,
                                                                       bottom: r.getBoundingClientRect().bottom}));
  const width = document.documentElement.scrollWidth;
  document.querySelectorAll('details').forEach(d => d.open = true);
  return {width, rows, unfolded_width: document.documentElement.scrollWidth,
          headers: [...overview.querySelectorAll('th')].map(h => h.innerText)};
})()"""


PLACE_FDS = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
             "os.execv(sys.argv[3], sys.argv[3:])")


class DevTools:
    """Chrome's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-terminated JSON)."""

    def __init__(self, browser: str, profile: str):
        to_browser, self.writer = os.pipe()
        self.reader, from_browser = os.pipe()
        # The browser's ends above 4, so that placing them at 3 and 4 cannot overwrite one with the other; a
        # small Python trampoline places them (no preexec_fn: fds 3 and 4 need not be open here).
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        command = [sys.executable, "-c", PLACE_FDS, *map(str, ends), browser, *FLAGS, f"--user-data-dir={profile}",
                   "about:blank"]
        self.process = subprocess.Popen(command, pass_fds=ends, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self.buffer, self.last_id = b"", 0

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params} | ({"sessionId": session} if session
                                                                                else {})
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self.buffer:
                if not select.select([self.reader], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"{method}: no answer from the browser in {timeout} s")
                chunk = os.read(self.reader, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{method}: the browser closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        os.close(self.writer)
        os.close(self.reader)


def render(page_path, expression: str, screenshot=None) -> dict:
    """Load a page at 1,400 x 900, wait until it (images included) has loaded, and evaluate `expression`."""
    with tempfile.TemporaryDirectory(prefix="dnnbench-chromium-") as profile:
        tools = DevTools(BROWSER, profile)
        try:
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            tools.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=HEIGHT,
                       deviceScaleFactor=1, mobile=False)
            url = page_path.resolve().as_uri()
            tools.call("Page.navigate", session, url=url)
            loaded = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
            for _ in range(300):  # the navigation is asynchronous: about:blank is `complete` too
                if tools.call("Runtime.evaluate", session, expression=loaded, returnByValue=True)["result"]["value"]:
                    break
                time.sleep(0.1)
            if screenshot:
                data = tools.call("Page.captureScreenshot", session, format="png")["data"]
                screenshot.write_bytes(base64.b64decode(data))
            found = tools.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
            assert "exceptionDetails" not in found, found["exceptionDetails"]
            return found["result"]["value"]
        finally:
            tools.close()


def sweep_rows():
    """A 12-model x 2-precision sweep as `make bench` writes it: some targets reached, some missed, one failure,
    numbers of every size the report formats."""
    models = ("attention", "autoencoder", "capsnet", "cnn", "dbn", "dqn", "gan", "lstm", "mlp", "resnet", "rnn",
              "transformer")
    rows = []
    for index, model in enumerate(models):
        for precision, scale in (("32-true", 1.0), ("bf16-mixed", 1.37)):
            reached = index % 3 != 0
            rows.append(make_row(model=model, precision=precision, metric_value=0.9 + index / 200,
                                 metric_target=0.94, reached_target="yes" if reached else "no",
                                 time_to_target_s=2.80804 * (index + 1) if reached else "",
                                 train_samples_per_s=5994.74 * scale * (index + 1),
                                 infer_samples_per_s=29116.3 * scale * (index + 1) ** 2, peak_rss_mb=950.039 + index,
                                 rss_after_import_mb=689.781, params=45706 * (index + 1), flops_per_sample=6.70003e6,
                                 achieved_tflops=0.0401649, latency_p50_ms=2.15131, latency_p95_ms=2.28619,
                                 train_samples_per_s_spread=0.157517, message="latency p99 empty: 228 calls timed"))
    rows[-1] = make_row(model="transformer", precision="bf16-mixed", status="timeout")
    return rows


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install -y chromium)")
def test_first_screen_shows_the_overview_with_every_target_marked_and_the_page_fits_1400_px(tmp_path):
    index = write_report([write_csv(tmp_path / "results.csv", sweep_rows())], tmp_path)
    shown = render(index, MEASURE)
    assert len(shown["rows"]) == 24  # one overview row per model x precision
    for row in shown["rows"]:
        target = row["text"].split("\t")[2]
        assert target[0] in "✓✗", row["text"]
        assert row["bottom"] <= HEIGHT, f"below the first screen: {row}"
    assert shown["width"] <= WIDTH and shown["unfolded_width"] <= WIDTH, shown
    assert "target (validation)" in shown["headers"] and "speed-up vs 32-true" in shown["headers"]


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install -y chromium)")
def test_a_sweep_of_sixteen_configs_still_fits_1400_px_with_every_table_unfolded(tmp_path):
    configs = [(device, precision, compiled) for device in ("cpu", "cuda")
               for precision in ("32-true", "bf16-mixed", "16-mixed", "bf16-true") for compiled in ("off", "on")]
    rows = [make_row(model=model, device=device, precision=precision, compile=compiled, repeat=repeat,
                     train_samples_per_s=12345.6 + 1000 * repeat, infer_samples_per_s=98765.4 - 2000 * repeat,
                     metric_value=0.9123 + repeat / 100, noise_warning="shared device" if repeat else "")
            for model in ("attention", "autoencoder", "transformer") for device, precision, compiled in configs
            for repeat in range(2)]
    shown = render(write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path), MEASURE)
    assert len(shown["rows"]) == 48
    assert shown["width"] <= WIDTH and shown["unfolded_width"] <= WIDTH, shown["unfolded_width"]
