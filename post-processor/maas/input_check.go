package maas

import (
	"context"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

// checkInputStream reads the file once, hashing it and checking its
// compressed stream (gzip's CRC-32 and length per member, xz -t) so a
// truncated or altered image never reaches MAAS, which would store it
// and fail only when a machine deploys it. A size other than the recorded
// one is refused first, without reading.
func checkInputStream(ctx context.Context, img *diskFile) (string, int64, error) {
	if err := diskcheck.Recorded(ctx, img.path, img.size, "", "the winbake-compress artifact"); err != nil {
		return "", 0, err
	}
	return diskcheck.CheckStream(ctx, img.path, img.format)
}
