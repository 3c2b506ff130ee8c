"""A minimal desktop app on t2i_sdk: prompt, latency budget, live preview, cancel.

    python examples/desktop_app.py [--bundle bundles/shapes]
    python examples/desktop_app.py --selftest --screenshot shot.png   # drives itself, exits 0

Threads: tkinter may only be touched from the thread that made the root window. The bundle
loads and every run works on worker threads; they put (kind, run_id, payload) tuples on a
``queue.Queue`` which the UI thread drains every 50 ms with ``root.after``. Generate while a
run is in flight sets that run's cancel event (it returns its best image so far) and starts
a new one; events of superseded runs are not shown.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import tkinter as tk
from tkinter import ttk

from PIL import Image, ImageTk

PREVIEW_PX = 320  # the shapes bundle draws 64x64 images: scale up, nearest-neighbour


class App:
    def __init__(self, root: tk.Tk, bundle: str, device: str = "cpu"):
        self.root = root
        self.events: queue.Queue = queue.Queue()  # worker threads -> UI thread
        self.pipe = None
        self.run_id = 0  # id of the run on screen; events of older runs are dropped
        self.cancel: threading.Event | None = None  # cancel event of the run on screen
        self.running = False
        self.finished: list[dict] = []  # every run's outcome, superseded ones too
        self.previews = 0  # previews drawn (progress reports that carried an image)
        self.errors: list[str] = []
        self._photo = None  # keep a reference, or tk drops the image

        root.title("t2i-sdk desktop example")
        frame = ttk.Frame(root, padding=8)
        frame.grid(sticky="nsew")
        self.prompt = ttk.Entry(frame, width=48)
        self.prompt.insert(0, "two red circles left of a blue square")
        self.prompt.grid(row=0, column=0, columnspan=3, sticky="ew")
        self.prompt.bind("<Return>", lambda _e: self.generate())
        self.budget = tk.IntVar(value=2000)
        ttk.Label(frame, text="budget ms").grid(row=1, column=0, sticky="w")
        tk.Scale(frame, from_=250, to=10000, resolution=250, orient="horizontal",
                 variable=self.budget, length=260).grid(row=1, column=1, sticky="ew")
        self.generate_button = ttk.Button(frame, text="Generate", command=self.generate,
                                          state="disabled")
        self.generate_button.grid(row=2, column=0, sticky="w", pady=4)
        self.seed = tk.IntVar(value=0)
        seed_box = ttk.Frame(frame)
        seed_box.grid(row=2, column=1)
        ttk.Label(seed_box, text="seed").pack(side="left")
        ttk.Spinbox(seed_box, from_=0, to=2**31 - 1, textvariable=self.seed, width=8).pack(
            side="left")
        self.cancel_button = ttk.Button(frame, text="Cancel", command=self.cancel_run,
                                        state="disabled")
        self.cancel_button.grid(row=2, column=2, sticky="e", pady=4)
        self.preview = tk.Label(frame, width=PREVIEW_PX, height=PREVIEW_PX, bg="#333")
        self.preview.grid(row=3, column=0, columnspan=3, pady=4)
        self.bar = ttk.Progressbar(frame, maximum=1.0, mode="indeterminate")
        self.bar.grid(row=4, column=0, columnspan=3, sticky="ew")
        self.status = ttk.Label(frame, text=f"loading {bundle} …")
        self.status.grid(row=5, column=0, columnspan=3, sticky="w")
        self.bar.start(20)
        root.protocol("WM_DELETE_WINDOW", self.close)

        threading.Thread(target=self._load, args=(bundle, device), daemon=True).start()
        root.after(50, self._poll)

    # -- worker threads: never touch tk here, only self.events -------------------------------

    def _load(self, bundle: str, device: str) -> None:
        try:
            from t2i_sdk import Pipeline
            self.events.put(("loaded", 0, Pipeline.from_pretrained(bundle, device=device)))
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.events.put(("error", 0, f"loading failed: {exc!r}"))

    def _work(self, run_id: int, prompt: str, budget_ms: int, seed: int,
              cancel: threading.Event) -> None:
        from t2i_sdk.errors import Cancelled
        try:
            result = self.pipe(prompt, budget_ms=budget_ms, seed=seed, cancel=cancel,
                               on_progress=lambda p: self.events.put(("progress", run_id, p)))
            self.events.put(("done", run_id, result))
        except Cancelled:  # cancelled before the first image existed
            self.events.put(("done", run_id, None))
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.events.put(("error", run_id, f"run failed: {exc!r}"))

    # -- UI thread ------------------------------------------------------------------------------

    def generate(self) -> None:
        prompt = self.prompt.get().strip()
        if self.pipe is None or not prompt:
            return
        self.cancel_run()  # a new request supersedes the one in flight
        self.run_id += 1
        self.cancel = threading.Event()
        self.running = True
        self.cancel_button.state(["!disabled"])
        self.bar.configure(mode="determinate", value=0)
        self.status.configure(text=f"starting “{prompt}” …")
        threading.Thread(target=self._work, daemon=True, args=(
            self.run_id, prompt, int(self.budget.get()), int(self.seed.get()), self.cancel)).start()

    def cancel_run(self) -> None:
        if self.cancel is not None:
            self.cancel.set()  # the worker returns its best image at the next step

    def close(self) -> None:
        self.cancel_run()
        self.root.destroy()

    def _poll(self) -> None:
        latest = None  # draw only the newest progress of a batch
        try:
            while True:
                kind, run_id, payload = self.events.get_nowait()
                if kind == "progress":
                    if run_id == self.run_id:
                        latest = payload
                elif kind == "done":
                    self._finished(run_id, payload)
                elif kind == "loaded":
                    self.pipe = payload
                    self.bar.stop()
                    self.bar.configure(mode="determinate", value=0)
                    self.generate_button.state(["!disabled"])
                    self.status.configure(text="ready")
                else:  # "error"
                    self.errors.append(payload)
                    self.status.configure(text=payload)
                    if run_id == self.run_id:
                        self._idle()
        except queue.Empty:
            pass
        if latest is not None and self.running:
            self._show_progress(latest)
        self.root.after(50, self._poll)

    def _show_progress(self, p) -> None:
        self.bar.configure(value=p.fraction)
        left = "" if p.remaining_ms is None else f", {max(p.remaining_ms, 0) / 1e3:.1f} s left"
        text = f"{p.stage} {p.done}/{p.total}, {p.elapsed_ms / 1e3:.1f} s{left}"
        if p.best is not None:
            self._show_image(p.best.image)
            self.previews += 1
            if p.best.score is not None:  # a tight budget may leave no time to score
                text += f" | best score {p.best.score.total:.3f}"
        self.status.configure(text=text)

    def _finished(self, run_id: int, result) -> None:
        outcome = ("cancelled" if result is None or result.cancelled else "done")
        self.finished.append({"run": run_id, "outcome": outcome, "image": result is not None,
                              "stopped_by": result.stopped_by if result else "cancelled"})
        if run_id != self.run_id:
            return  # superseded: a newer run is on screen
        if result is None:
            self.status.configure(text="cancelled before the first image")
        else:
            self._show_image(result.image)
            score = result.best.score.total if result.best.score else float("nan")
            self.bar.configure(value=1.0 if outcome == "done" else self.bar["value"])
            self.status.configure(text=f"{outcome} in {result.timings['total'] / 1e3:.1f} s | "
                                       f"score {score:.3f} | {result.plan}")
        self._idle()

    def _idle(self) -> None:
        self.running = False
        self.cancel_button.state(["disabled"])

    def _show_image(self, image: Image.Image) -> None:
        big = image.resize((PREVIEW_PX, PREVIEW_PX), Image.Resampling.NEAREST)
        self._photo = ImageTk.PhotoImage(big)
        self.preview.configure(image=self._photo, width=PREVIEW_PX, height=PREVIEW_PX)


def screenshot(root: tk.Tk, path: str) -> None:
    """Save the window's pixels (X11: PIL grabs them through XCB from $DISPLAY)."""
    from PIL import ImageGrab
    root.update()
    x, y = root.winfo_rootx(), root.winfo_rooty()
    ImageGrab.grab(bbox=(x, y, x + root.winfo_width(), y + root.winfo_height())).save(path)


def selftest(bundle: str, shot: str | None, timeout_s: float = 300) -> dict:
    """Drive the UI as a user would: type, Generate, type again and Generate (supersedes the
    first run), screenshot and Cancel after two previews, wait for the result."""
    root = tk.Tk()
    app = App(root, bundle)
    t0, report = time.monotonic(), {"ok": False}
    # Anything raised in a tk callback or a thread fails the test instead of only printing.
    root.report_callback_exception = lambda *exc: app.errors.append(f"tk: {exc[1]!r}")
    threading.excepthook = lambda a: app.errors.append(f"{a.thread.name}: {a.exc_value!r}")

    def type_and_generate(text: str) -> None:
        app.prompt.delete(0, "end")
        app.prompt.insert(0, text)
        app.budget.set(6000)
        app.generate_button.invoke()

    marks: dict = {}

    def shoot_and_cancel() -> None:
        if shot:
            screenshot(root, shot)  # mid-run: the preview and the progress of run 2
        app.cancel_button.invoke()

    steps = [  # (wait until, then do)
        (lambda: app.pipe is not None, lambda: type_and_generate("a green triangle above a yellow star")),
        (lambda: app.previews >= 1, lambda: (marks.update(p=app.previews), type_and_generate(
            "two red circles left of a blue square"))),
        (lambda: app.previews >= marks["p"] + 2 or not app.running, shoot_and_cancel),
        (lambda: not app.running and len(app.finished) >= 2, lambda: None),
    ]

    def tick() -> None:
        if app.errors or time.monotonic() - t0 > timeout_s:
            report["reason"] = app.errors or f"timed out after {timeout_s} s"
            return root.destroy()
        if steps and steps[0][0]():
            steps.pop(0)[1]()
        if not steps:
            report.update(ok=True)
            return root.destroy()
        root.after(100, tick)

    root.after(100, tick)
    root.mainloop()
    report.update(previews=app.previews, finished=app.finished, errors=app.errors,
                  seconds=round(time.monotonic() - t0, 1))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="bundles/shapes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--selftest", action="store_true", help="drive the UI, print a JSON report")
    ap.add_argument("--screenshot", help="with --selftest: save the window here mid-run")
    ap.add_argument("--timeout", type=float, default=300, help="with --selftest: give up (s)")
    args = ap.parse_args(argv)
    if args.selftest:
        report = selftest(args.bundle, args.screenshot, args.timeout)
        print(json.dumps(report))
        return 0 if report["ok"] else 1
    root = tk.Tk()
    App(root, args.bundle, args.device)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
