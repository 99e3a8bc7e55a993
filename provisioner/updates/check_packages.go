package updates

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

// checkPackageFiles checks at `packer validate` what the build would
// otherwise find only after Windows Setup, an hour in: the globs match at
// least one file between them (a folder may hold only .msu or only .cab
// files, so `["dir/*.msu", "dir/*.cab"]` needs only one to match), every
// path exists and is a .msu or .cab file, a checksum given with a path
// matches the file, and a URL names a .msu or .cab.
func (c *Config) checkPackageFiles() []error {
	var errs, unmatched []error
	matched := 0
	for i, g := range c.Packages {
		field := fmt.Sprintf("packages[%d]", i)
		if strings.TrimSpace(g) == "" {
			continue
		}
		matches, err := filepath.Glob(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid glob: %v", field, g, err))
			continue
		}
		matched += len(matches)
		if len(matches) == 0 {
			if strings.ContainsAny(g, "*?[") {
				unmatched = append(unmatched, fmt.Errorf("%s: %q matches no file (a relative pattern is taken from the directory Packer runs in, %s); give the path or glob of .msu or .cab files", field, g, workDir()))
			} else {
				errs = append(errs, fmt.Errorf("%s: %s does not exist (a relative path is taken from the directory Packer runs in, %s); give the path of a .msu or .cab file", field, g, workDir()))
			}
			continue
		}
		for _, m := range matches {
			if err := checkPackageFile(field, m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if matched == 0 && len(c.PackageBlocks) == 0 {
		errs = append(errs, unmatched...)
	}
	for i, b := range c.PackageBlocks {
		field := fmt.Sprintf("package[%d]", i)
		if b.Path != "" {
			if err := checkPackageFile(field+".path", b.Path); err != nil {
				errs = append(errs, err)
				continue
			}
			if b.Checksum != "" && checksumPattern.MatchString(b.Checksum) {
				sum, _, err := diskcheck.FileSHA256(context.Background(), b.Path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s.path: %v", field, err))
				} else if want := strings.ToLower(strings.TrimPrefix(b.Checksum, "sha256:")); sum != want {
					errs = append(errs, fmt.Errorf("%s.checksum: %s has SHA-256 %s, the checksum says %s; give the file's checksum (sha256sum %s) or the right file", field, b.Path, sum, want, b.Path))
				}
			}
		}
		if b.URL != "" {
			if u, err := url.Parse(b.URL); err == nil && u.Host == "" {
				errs = append(errs, fmt.Errorf("%s.url: %q names no host; give a URL such as \"https://catalog.s.download.windowsupdate.com/.../windows10.0-kb5044281-x64.msu\"", field, b.URL))
			} else if err == nil && !isPackageName(path.Base(u.Path)) {
				errs = append(errs, fmt.Errorf("%s.url: %q does not name a .msu or .cab file (the downloaded file keeps the URL's file name, which tells DISM how to install it); give the package's own URL", field, b.URL))
			}
		}
	}
	return errs
}

// checkPackageFile checks that p is a .msu or .cab file.
func checkPackageFile(field, p string) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %s does not exist (a relative path is taken from the directory Packer runs in, %s); give the path of a .msu or .cab file", field, p, workDir())
	case st.IsDir():
		return fmt.Errorf("%s: %s is a directory; give .msu or .cab files, e.g. %q", field, p, filepath.Join(p, "*.msu"))
	case !isPackageName(p):
		return fmt.Errorf("%s: %s is not a .msu or .cab file; winbake-updates installs Windows update packages (.msu, .cab) with DISM", field, p)
	}
	return nil
}

func isPackageName(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".msu" || ext == ".cab"
}

func workDir() string {
	wd, _ := os.Getwd()
	return wd
}
