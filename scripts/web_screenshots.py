"""Screenshots of ``basicsr web`` for the docs: one rainy photo derained by zoo models, side by side.

    MH2F_ZOO_DIR=ZOO python scripts/web_screenshots.py PHOTO.jpg --models jordere-practical,spanet-spa \\
        --left-half --out docs/images/web_real9.jpg \\
        --results-out docs/images/web_real9_results.jpg

Starts the page on a free loopback port, drives Debian's chromium (the webtest extra) as a user
would, and saves the page with its results. ``--left-half`` keeps the left half of the photo (the
Real9 files are the rainy photo beside DID-MDN's result).
"""
import argparse
import cv2
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
import web_page  # noqa: E402 (the browser helpers of the tests)


def quality(path):
    """Playwright's screenshot options for ``path``: JPEG at quality 85, or PNG."""
    return {'quality': 85} if path.lower().endswith(('.jpg', '.jpeg')) else {}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('photo')
    parser.add_argument('--models', required=True, help='comma-separated zoo names')
    parser.add_argument('--left-half', action='store_true', help='keep the left half of the photo')
    parser.add_argument('--out', required=True, help='the screenshot to write: .png, or .jpg (quality 85)')
    parser.add_argument('--results-out', help='also the results alone (sliders, scores, downloads), here')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photo = cv2.imread(args.photo)
        if photo is None:
            parser.error(f'{args.photo}: not a readable image')
        if args.left_half:
            photo = photo[:, :photo.shape[1] // 2]
        path = os.path.join(folder, os.path.splitext(os.path.basename(args.photo))[0] + '.png')
        cv2.imwrite(path, photo)
        names = args.models.split(',')
        with web_page.web_server(folder, start_timeout=180) as url, web_page.browser() as chromium:
            page = web_page.open_page(chromium, url, width=1400)
            web_page.upload_photo(page, path)
            web_page.choose_zoo(page, names)
            page.click('#run')
            web_page.wait_for_text(page, 'status', f'done: {len(names)} of {len(names)} models', timeout=600_000)
            page.wait_for_timeout(1000)  # the last images fade in
            page.screenshot(path=args.out, full_page=True, **quality(args.out))
            if args.results_out:
                page.locator('#results').screenshot(path=args.results_out, **quality(args.results_out))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
