"""Screenshot a bioflow report in headless Chromium (offline), e.g. for the README.

    python tools/screenshot_report.py report.html docs/report.png [--width 1400] [--height 2000]

Needs Debian's ``chromium`` (or ``--chromium PATH``) and the ``playwright`` package (test extras).
The page is opened with the network off; the script waits until every chart has rendered.
"""
import argparse
import pathlib
import shutil

from playwright.sync_api import sync_playwright


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=pathlib.Path)
    parser.add_argument("png", type=pathlib.Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2000, help="height of the clip from the top of the page")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True, viewport=dict(width=args.width, height=args.height)).new_page()
            page.goto(args.html.resolve().as_uri())
            charts = page.locator(".chart").count()
            page.wait_for_function(f"document.querySelectorAll('.chart svg.marks').length >= {charts}", timeout=60_000)
            args.png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.png), clip=dict(x=0, y=0, width=args.width, height=args.height))
        finally:
            browser.close()
    print(f"Wrote {args.png} ({args.width}x{args.height}, {charts} charts rendered)")


if __name__ == "__main__":
    main()
