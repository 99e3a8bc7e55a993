package maas

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
)

// A compressed image whose stream is broken is refused before MAAS is
// asked, even when the artifact records that very file (a stream written
// broken): gzip's CRC-32 and length, xz's own check.
func TestBrokenStreamIsRefused(t *testing.T) {
	for _, format := range []string{"dd.gz", "dd.tgz", "dd.xz"} {
		t.Run(format, func(t *testing.T) {
			in := compressed(t, format, 7)
			b, err := os.ReadFile(in.Path)
			if err != nil {
				t.Fatal(err)
			}
			b = b[:len(b)-len(b)/3]
			if err := os.WriteFile(in.Path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			// The artifact records the broken file, as if written so.
			in.Outputs[0].SHA256, in.Outputs[0].Size = fmt.Sprintf("%x", sha256.Sum256(b)), int64(len(b))
			srv := maasserver.New(maasserver.Options{})
			defer srv.Close()
			_, err = publish(context.Background(), configure(t, srv, nil), newTestUI(), in.Compressed)
			if err == nil || !strings.Contains(err.Error(), in.Path+" is not an intact "+format+" stream") {
				t.Fatalf("err = %v, want the broken stream named", err)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests reached MAAS", n)
			}
		})
	}
}
