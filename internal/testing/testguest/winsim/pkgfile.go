package winsim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent/cabinet"
)

// Package files the catalog does not name are read: a synthetic package is
// a real cabinet (.cab, or an .msu holding .cab files) with the metadata a
// Microsoft package has (update.mum in a .cab; the package .cab files,
// WSUSSCAN.cab and *-pkgProperties.txt in an .msu) plus PackageSpecMember,
// which says how the simulated servicing stack treats it. Such files are
// what tests hand to real tools (Packer, the updates provisioner) when the
// guest's catalog cannot be set up in advance, as in the stand-in VM.

// PackageSpecMember is the member of a synthetic package that holds its
// PackageSpec as JSON.
const PackageSpecMember = "winsim-package.json"

// PackageSpec is the behaviour of a synthetic package; the fields mean
// what the Package fields of the same names mean.
type PackageSpec struct {
	// Result is "installs", "reboot_required" or "not_applicable".
	Result string `json:"result"`
	// Requires is the identity of a package that must be installed first
	// (0x800F0823 until then), e.g. the servicing stack's.
	Requires     string `json:"requires,omitempty"`
	Failures     int    `json:"failures,omitempty"`
	FailureCode  uint32 `json:"failure_code,omitempty"`
	SecondReboot bool   `json:"second_reboot,omitempty"`
	// InstallTime is a Go duration ("2s").
	InstallTime string `json:"install_time,omitempty"`
	UBR         int    `json:"ubr,omitempty"`
}

var specResults = map[string]Result{
	"installs":        Installs,
	"reboot_required": InstallsRebootRequired,
	"not_applicable":  NotApplicable,
}

// mumIdentity is the assemblyIdentity of an update.mum.
type mumIdentity struct {
	Name    string `xml:"name,attr"`
	Version string `xml:"version,attr"`
	Arch    string `xml:"processorArchitecture,attr"`
	Token   string `xml:"publicKeyToken,attr"`
	Lang    string `xml:"language,attr"`
}

// PackageIdentity is the CBS identity of an update.mum's assemblyIdentity:
// name~token~arch~language~version, language empty when "neutral".
func PackageIdentity(mum []byte) (string, error) {
	var doc struct {
		Identity mumIdentity `xml:"assemblyIdentity"`
	}
	if err := xml.Unmarshal(mum, &doc); err != nil {
		return "", fmt.Errorf("update.mum: %w", err)
	}
	id := doc.Identity
	if id.Name == "" || id.Version == "" {
		return "", fmt.Errorf("update.mum: assemblyIdentity without name or version")
	}
	lang := id.Lang
	if strings.EqualFold(lang, "neutral") {
		lang = ""
	}
	return id.Name + "~" + id.Token + "~" + id.Arch + "~" + lang + "~" + id.Version, nil
}

// packageForFile finds what the package file at winPath (absolute or
// relative to files' directory) installs as: the catalog entry of its
// name, else its synthetic description. nil when neither.
func (m *Machine) packageForFile(files *Files, winPath string) *Package {
	name := winPath[strings.LastIndexAny(winPath, `\/`)+1:]
	if p := m.packageByFile(name); p != nil {
		return p
	}
	p, err := m.readPackageFile(files, winPath, name)
	if err != nil {
		m.logf("winsim: %s is not a synthetic package: %v", winPath, err)
		return nil
	}
	m.catalogMu.Lock()
	defer m.catalogMu.Unlock()
	for _, q := range m.catalog {
		if strings.EqualFold(q.Identity, p.Identity) && strings.EqualFold(q.FileName, p.FileName) {
			return q
		}
	}
	m.catalog = append(m.catalog, p)
	return p
}

func (m *Machine) readPackageFile(files *Files, winPath, name string) (*Package, error) {
	ext := strings.ToLower(path.Ext(name))
	if ext != ".cab" && ext != ".msu" {
		return nil, fmt.Errorf("not a .cab or .msu")
	}
	r, err := files.resolve(winPath)
	if err != nil || !r.exists {
		return nil, fmt.Errorf("not found")
	}
	fh, err := os.Open(r.host)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	cab, err := cabinet.NewReader(fh, st.Size())
	if err != nil {
		return nil, err
	}
	specFile := cab.Lookup(PackageSpecMember)
	if specFile == nil {
		return nil, fmt.Errorf("no %s member", PackageSpecMember)
	}
	b, err := specFile.ReadAll()
	if err != nil {
		return nil, err
	}
	var spec PackageSpec
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%s: %w", PackageSpecMember, err)
	}
	res, ok := specResults[spec.Result]
	if !ok {
		return nil, fmt.Errorf("%s: result %q (want installs, reboot_required, not_applicable)", PackageSpecMember, spec.Result)
	}
	p := &Package{FileName: name, Result: res, RequiresIdentity: spec.Requires, Failures: spec.Failures,
		FailureCode: spec.FailureCode, SecondReboot: spec.SecondReboot, UBR: spec.UBR}
	if spec.InstallTime != "" {
		if p.InstallTime, err = time.ParseDuration(spec.InstallTime); err != nil {
			return nil, fmt.Errorf("%s: install_time: %w", PackageSpecMember, err)
		}
	}
	if p.FailureCode == 0 {
		p.FailureCode = ExitInstallersFailed
	}
	if p.SecondReboot {
		p.Result = InstallsRebootRequired
	}
	if ext == ".msu" {
		var wim *cabinet.File
		for _, f := range cab.Files {
			p.Contents = append(p.Contents, f.Name)
			if strings.EqualFold(path.Ext(f.Name), ".wim") {
				wim = f
			}
		}
		p.archive = r.win.String()
		p.Identity = "Msu_" + strings.TrimSuffix(name, path.Ext(name))
		if wim == nil {
			return p, nil
		}
		// A 24H2-layout .msu: its .wim payload (a synthetic cabinet here)
		// holds the package's update.mum.
		b, err := wim.ReadAll()
		if err != nil {
			return nil, err
		}
		inner, err := cabinet.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", wim.Name, err)
		}
		if p.Identity, err = mumIdentityOf(inner); err != nil {
			return nil, fmt.Errorf("%s: %w", wim.Name, err)
		}
		p.wimLayout = true
		return p, nil
	}
	if p.Identity, err = mumIdentityOf(cab); err != nil {
		return nil, err
	}
	return p, nil
}

// mumIdentityOf reads the package identity from a cabinet's update.mum.
func mumIdentityOf(cab *cabinet.Reader) (string, error) {
	mum := cab.Lookup("update.mum")
	if mum == nil {
		return "", fmt.Errorf("a .cab without update.mum")
	}
	mb, err := mum.ReadAll()
	if err != nil {
		return "", err
	}
	return PackageIdentity(mb)
}

// extractArchive writes the members of the synthetic .msu at src into dir.
func (m *Machine) extractArchive(src string, dir string, fsys *Files) ([]string, error) {
	r, err := fsys.resolve(src)
	if err != nil || !r.exists {
		return nil, fmt.Errorf("%s not found", src)
	}
	fh, err := os.Open(r.host)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	cab, err := cabinet.NewReader(fh, st.Size())
	if err != nil {
		return nil, err
	}
	abs, err := fsys.Abs(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range cab.Files {
		data, err := f.ReadAll()
		if err != nil {
			return out, err
		}
		dst := strings.TrimSuffix(abs, `\`) + `\` + f.Name[strings.LastIndexAny(f.Name, `\/`)+1:]
		w, err := fsys.Create(dst)
		if err != nil {
			return out, err
		}
		_, err = io.Copy(w, strings.NewReader(string(data)))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
		out = append(out, dst)
	}
	return out, nil
}
