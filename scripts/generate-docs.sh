#!/usr/bin/env bash
# Renders docs/ (hand-written, with @include of generated partials) into
# .web-docs/, the layout the Packer integrations registry reads:
#   docs/README.md                    -> .web-docs/README.md
#   docs/<kind>s/<name>.mdx           -> .web-docs/components/<kind>/<name>/README.md
set -euo pipefail
cd "$(dirname "$0")/.."

rendered=.docs
rm -rf "$rendered"
trap 'rm -rf "$rendered"' EXIT
go tool packer-sdc renderdocs -src docs -partials docs-partials/ -dst "$rendered/"

find .web-docs -name README.md -delete 2>/dev/null || true
mkdir -p .web-docs
cp "$rendered/README.md" .web-docs/README.md
for kind in builder provisioner post-processor datasource; do
  [[ -d "$rendered/${kind}s" ]] || continue
  for page in "$rendered/${kind}s"/*.mdx; do
    [[ -e "$page" ]] || continue
    name=$(basename "$page" .mdx)
    mkdir -p ".web-docs/components/$kind/$name"
    cp "$page" ".web-docs/components/$kind/$name/README.md"
  done
done
find .web-docs/components -type d -empty -delete 2>/dev/null || true
