package updates

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// testPackageGlob is a glob matching one (empty) .msu file.
func testPackageGlob(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "windows10.0-kb5044281-x64.msu"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "*.msu")
}

func TestPrepareDefaults(t *testing.T) {
	var c Config
	glob := testPackageGlob(t)
	if err := c.Prepare(map[string]any{"packages": []string{glob}}); err != nil {
		t.Fatal(err)
	}
	if c.Delivery != "http" || c.MaxReboots != 10 || c.Retries != 2 || c.RestartTimeout != 30*time.Minute ||
		c.ServicingTimeout != 10*time.Minute || c.GuestDirectory != DefaultGuestDirectory {
		t.Errorf("defaults %+v", c)
	}
	c = Config{}
	if err := c.Prepare(map[string]any{"packages": []string{glob}, "retries": 0}); err != nil || c.Retries != 0 {
		t.Errorf("retries = 0: %d, %v", c.Retries, err)
	}
}

// Each mistake is one error naming the field and what is accepted.
func TestPrepareErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{}, "packages: give at least one package"},
		{map[string]any{"packages": []string{"a.msu"}, "delivery": "smb"}, `delivery "smb": accepted values are "http" (default) and "winrm"`},
		{map[string]any{"packages": []string{"a.msu"}, "max_reboots": -1}, "max_reboots -1: want a positive number"},
		{map[string]any{"packages": []string{"a.msu"}, "retries": -2}, "retries -2: want 0 or more"},
		{map[string]any{"packages": []string{"a.msu"}, "guest_directory": `C:\Program Files\x`}, "guest_directory"},
		{map[string]any{"packages": []string{"a.msu"}, "http_address": "host.example"}, `http_address "host.example": want an IP address`},
		{map[string]any{"package": []map[string]any{{"url": "https://example.com/a.msu"}}}, "package[0]: `url` needs `checksum"},
		{map[string]any{"package": []map[string]any{{"path": "a.msu", "checksum": "md5:abc"}}}, `package[0].checksum "md5:abc"`},
		{map[string]any{"package": []map[string]any{{"path": "a.msu", "kind": "lcu"}}}, `package[0].kind "lcu": accepted kinds are servicing_stack, cumulative, checkpoint, dotnet, other`},
		{map[string]any{"package": []map[string]any{{"path": "a.msu", "url": "https://example.com/a.msu", "checksum": "sha256:" + strings.Repeat("0", 64)}}}, "package[0]: set either `path` or `url`, not both"},
	} {
		var c Config
		err := c.Prepare(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.raw, err, tc.want)
		}
	}
}

// A glob matching nothing is refused at packer validate, and again when
// the build resolves the packages (the files may have gone since).
func TestGlobMatchingNothing(t *testing.T) {
	var c Config
	glob := t.TempDir() + "/*.msu"
	if err := c.Prepare(map[string]any{"packages": []string{glob}}); err == nil || !strings.Contains(err.Error(), "packages[0]: \""+glob+"\" matches no file") {
		t.Fatalf("Prepare: %v", err)
	}
	_, err := (&Config{Packages: []string{glob}}).resolvePackages(context.Background(), packersdk.TestUi(t))
	if err == nil || !strings.Contains(err.Error(), "packages[0]") || !strings.Contains(err.Error(), "matches no file") {
		t.Errorf("err %v", err)
	}
}
