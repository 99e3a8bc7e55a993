package compress

import "github.com/winbake/packer-plugin-winbake/internal/image"

// Artifact is what winbake-compress hands on: the files it wrote and the
// winbake manifest of the image they hold (image.Compressed, the contract
// winbake-glance, winbake-maas and winbake-verify read).
type Artifact = image.Compressed
