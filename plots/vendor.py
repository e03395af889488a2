"""Build plots/offline.html, the page template `dvc plots show` / `dvc plots diff` fill here.

DVC's default page loads Vega, Vega-Lite and vega-embed from a CDN, so on a machine without
internet every chart is an empty box. This template carries the three libraries inline instead
(`.dvc/config`: `plots.html_template`), from the npm packages pinned below: the versions
dvc-render 1.0.2 itself asks the CDN for, so the charts draw exactly as DVC intends.

Run it only to change the pinned versions (it is not part of the graph; nothing downloads at run
time):

    cd /tmp && npm pack vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2
    python plots/vendor.py /tmp/vega-5.20.2.tgz /tmp/vega-lite-5.2.0.tgz /tmp/vega-embed-6.18.2.tgz

Each tarball must match its pinned sha256; the template records each inlined file's sha256,
which tests/test_plots_offline.py checks.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
from pathlib import Path

# (npm package, version, sha256 of `npm pack`'s tarball, file inside it), in load order:
# vega-embed's bundle expects the globals `vega` and `vegaLite`.
PINNED = [
    ("vega", "5.20.2", "d77deab01d6104b1239228720721f93003e60797d2faced7ffdd759fa70f989d",
     "package/build/vega.min.js"),
    ("vega-lite", "5.2.0", "f64ca4745f043447ac86b67dc9e9592ec2b85ac8b8dafc35faf970f142463e4b",
     "package/build/vega-lite.min.js"),
    ("vega-embed", "6.18.2", "93aeee312e92077b0252ef026c0fe0ec8fa430c19825aeada6cd3a6804e68e1b",
     "package/build/vega-embed.min.js"),
]
TEMPLATE = Path(__file__).with_name("offline.html")

# dvc-render fills {refresh_tag} and {plot_divs}; leaving out {scripts} keeps its CDN <script>
# tags off the page. The vendored libraries go where @VENDORED@ stands.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>sim2real plots</title>
@VENDORED@
    <script>
        // dvc-render calls vegaEmbed('#id', spec) once per chart. Wrapped: SVG rather than
        // canvas (sharp at any zoom, and the drawn marks are in the DOM, where a test can count
        // them), and a chart that fails shows its error in place of an empty box.
        const embedChart = vegaEmbed;
        window.vegaEmbed = function (selector, spec, options) {
            return embedChart(selector, spec, Object.assign({renderer: "svg"}, options))
                .catch(function (error) {
                    const note = document.createElement("pre");
                    note.className = "chart-error";
                    note.textContent = "chart failed: " + error;
                    document.querySelector(selector).appendChild(note);
                });
        };
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def script_tag(package: str, version: str, member: str, source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    # an inline script ends at the first "</script"; the pinned bundles hold none
    if "</script" in source.lower() or "{plot_divs}" in source or "{refresh_tag}" in source:
        raise ValueError(f"{package}@{version} {member}: cannot be inlined as it is")
    return (f"    <!-- {package}@{version} {member.removeprefix('package/')} "
            f"sha256={digest} (BSD-3-Clause) -->\n    <script>{source}</script>")


def build(tarballs: list[Path]) -> str:
    if len(tarballs) != len(PINNED):
        raise ValueError(f"expected {len(PINNED)} tarballs: "
                         f"{', '.join(f'{p}-{v}.tgz' for p, v, _, _ in PINNED)}")
    tags = []
    for (package, version, sha, member), tarball in zip(PINNED, tarballs, strict=True):
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != sha:
            raise ValueError(f"{tarball}: sha256 {digest}, expected {sha} ({package}@{version})")
        with tarfile.open(tarball) as archive:
            source = archive.extractfile(member).read().decode("utf-8")
        tags.append(script_tag(package, version, member, source))
    return PAGE.replace("@VENDORED@", "\n".join(tags))


def main(argv: list[str]) -> int:
    try:
        page = build([Path(a) for a in argv])
    except (OSError, ValueError, KeyError, tarfile.TarError) as err:
        print(f"plots/vendor.py: error: {err}", file=sys.stderr)
        return 2
    TEMPLATE.write_text(page, encoding="utf-8", newline="\n")
    print(f"wrote {TEMPLATE} ({len(page)} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
