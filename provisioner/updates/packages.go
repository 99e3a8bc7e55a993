package updates

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/agent/cabinet"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

// Package is one update package to install.
type Package struct {
	// LocalPath is the file on the build host.
	LocalPath string
	// Name is its file name (also its name in the guest).
	Name   string
	Size   int64
	SHA256 string
	Kind   guestcontract.PackageKind
	// KindSource says where Kind came from: "override", "update.mum",
	// "pkgProperties.txt", "file name".
	KindSource string
	// KB is the article number ("KB5044281") when known.
	KB string
	// Version orders cumulative updates (checkpoints before the target):
	// the package's file version, e.g. "20348.2762.1.8".
	Version string
	// Identity is the CBS package identity DISM lists it under once
	// installed ("Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8"):
	// from a .cab's update.mum, from an .msu's unattend .xml; "" when the
	// package does not say (a 24H2 .wim-payload .msu has no .xml).
	Identity string
	// WimPayload: an .msu whose payload is a .wim, as Windows 11 24H2 /
	// Server 2025 cumulative updates are. DISM adds such a package from
	// the .msu and takes the checkpoint updates it needs from its folder.
	WimPayload bool
}

var (
	kbInName    = regexp.MustCompile(`(?i)kb(\d{5,8})`)
	propertyRow = regexp.MustCompile(`^\s*([^=]+?)\s*=\s*"(.*)"\s*$`)
)

// describe hashes the file and reads its metadata.
func describe(path string, override string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, want a .msu or .cab file", path)
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".msu" && ext != ".cab" {
		return nil, fmt.Errorf("%s: not a .msu or .cab file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	p := &Package{LocalPath: path, Name: filepath.Base(path), Size: st.Size(), SHA256: hex.EncodeToString(h.Sum(nil)), Kind: guestcontract.KindOther, KindSource: "file name"}
	if m := kbInName.FindStringSubmatch(p.Name); m != nil {
		p.KB = "KB" + m[1]
	}
	fromName(p)
	if cab, err := cabinet.NewReader(f, st.Size()); err == nil {
		if ext == ".cab" {
			readMum(p, cab)
		} else {
			readMsu(p, cab)
		}
	}
	if override != "" {
		p.Kind, _ = guestcontract.PackageKindNamed(override)
		p.KindSource = "override"
	}
	return p, nil
}

// fromName is the fallback: Microsoft's file names say "ssu-" for a
// servicing stack and "ndp" for .NET Framework.
func fromName(p *Package) {
	n := strings.ToLower(p.Name)
	switch {
	case strings.HasPrefix(n, "ssu-") || strings.Contains(n, "servicingstack"):
		p.Kind = guestcontract.KindServicingStack
	case strings.Contains(n, "ndp") || strings.Contains(n, "dotnet"):
		p.Kind = guestcontract.KindDotNet
	}
}

// kindFromIdentity classifies by the CBS package name of an update.mum.
func kindFromIdentity(name string) (guestcontract.PackageKind, bool) {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "servicingstack"):
		return guestcontract.KindServicingStack, true
	case strings.Contains(n, "rollupfix"):
		return guestcontract.KindCumulative, true
	case strings.Contains(n, "dotnet") || strings.Contains(n, "netfx"):
		return guestcontract.KindDotNet, true
	case strings.HasPrefix(n, "package_for_"):
		return guestcontract.KindOther, true
	}
	return guestcontract.KindOther, false
}

func readMum(p *Package, cab *cabinet.Reader) {
	f := cab.Lookup("update.mum")
	if f == nil {
		return
	}
	b, err := f.ReadAll()
	if err != nil {
		return
	}
	var doc struct {
		Identity assemblyIdentity `xml:"assemblyIdentity"`
		Package  struct {
			Identifier string `xml:"identifier,attr"`
		} `xml:"package"`
	}
	if xml.Unmarshal(b, &doc) != nil {
		return
	}
	if k, ok := kindFromIdentity(doc.Identity.Name); ok {
		p.Kind, p.KindSource = k, "update.mum"
	}
	p.Version = doc.Identity.Version
	p.Identity = doc.Identity.String()
	if id := doc.Package.Identifier; strings.HasPrefix(strings.ToUpper(id), "KB") {
		p.KB = strings.ToUpper(id)
	}
}

// assemblyIdentity is a CBS package's identity as manifests write it.
type assemblyIdentity struct {
	Name                  string `xml:"name,attr"`
	Version               string `xml:"version,attr"`
	ProcessorArchitecture string `xml:"processorArchitecture,attr"`
	Language              string `xml:"language,attr"`
	PublicKeyToken        string `xml:"publicKeyToken,attr"`
}

// String is the identity as DISM /Get-Packages prints it:
// name~publicKeyToken~architecture~language~version, with the language
// "neutral" left empty ("Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8").
func (a assemblyIdentity) String() string {
	if a.Name == "" || a.Version == "" || a.PublicKeyToken == "" {
		return ""
	}
	lang := a.Language
	if strings.EqualFold(lang, "neutral") {
		lang = ""
	}
	return strings.Join([]string{a.Name, a.PublicKeyToken, a.ProcessorArchitecture, lang, a.Version}, "~")
}

// readMsuIdentity reads the package identity from an .msu's unattend .xml
// (<stem>.xml: servicing/package/assemblyIdentity, the package the .msu
// installs), "" when there is none.
func readMsuIdentity(cab *cabinet.Reader) string {
	for _, m := range cab.Files {
		if !strings.HasSuffix(strings.ToLower(m.Name), ".xml") {
			continue
		}
		b, err := m.ReadAll()
		if err != nil {
			continue
		}
		var doc struct {
			Packages []struct {
				Identity assemblyIdentity `xml:"assemblyIdentity"`
			} `xml:"servicing>package"`
		}
		if xml.Unmarshal(b, &doc) == nil && len(doc.Packages) == 1 {
			return doc.Packages[0].Identity.String()
		}
	}
	return ""
}

func readMsu(p *Package, cab *cabinet.Reader) {
	for _, m := range cab.Files {
		if strings.HasSuffix(strings.ToLower(m.Name), ".wim") {
			p.WimPayload = true
		}
	}
	p.Identity = readMsuIdentity(cab)
	f := cab.Lookup("*-pkgProperties.txt")
	if f == nil {
		if p.WimPayload {
			// Only cumulative updates ship a .wim payload.
			p.Kind, p.KindSource = guestcontract.KindCumulative, ".wim payload"
		}
		return
	}
	b, err := f.ReadAll()
	if err != nil {
		return
	}
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	for sc.Scan() {
		if m := propertyRow.FindStringSubmatch(sc.Text()); m != nil {
			props[strings.ToLower(m[1])] = m[2]
		}
	}
	if kb := props["kb article number"]; kb != "" {
		p.KB = "KB" + strings.TrimPrefix(strings.ToUpper(kb), "KB")
	}
	p.Version = props["file version"]
	text := strings.ToLower(props["applies to"] + " " + props["product name"])
	hasSSU, others := false, 0
	for _, m := range cab.Files {
		n := strings.ToLower(m.Name)
		if !strings.HasSuffix(n, ".cab") || n == "wsusscan.cab" {
			continue
		}
		if strings.HasPrefix(n, "ssu-") {
			hasSSU = true
		} else {
			others++
		}
	}
	switch {
	case strings.Contains(text, "servicing stack") || hasSSU && others == 0 && !p.WimPayload:
		p.Kind = guestcontract.KindServicingStack
	case strings.Contains(text, ".net framework"):
		p.Kind = guestcontract.KindDotNet
	case strings.Contains(text, "security updates") || strings.Contains(text, "update rollups") || hasSSU || p.WimPayload:
		p.Kind = guestcontract.KindCumulative
	default:
		return
	}
	p.KindSource = "pkgProperties.txt"
}

// order sorts packages into install order: kind, then (for cumulative
// updates) version, then name. Several cumulative updates are a checkpoint
// chain: all but the newest are its checkpoints.
func order(pkgs []*Package) {
	var cus []*Package
	for _, p := range pkgs {
		if p.Kind == guestcontract.KindCumulative {
			cus = append(cus, p)
		}
	}
	if len(cus) > 1 {
		sort.SliceStable(cus, func(i, j int) bool { return versionLess(cus[i].Version, cus[j].Version) })
		for _, p := range cus[:len(cus)-1] {
			if p.KindSource != "override" {
				p.Kind = guestcontract.KindCheckpoint
			}
		}
	}
	sort.SliceStable(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Version != b.Version && (a.Kind == guestcontract.KindCheckpoint || a.Kind == guestcontract.KindCumulative) {
			return versionLess(a.Version, b.Version)
		}
		return strings.ToLower(a.Name) < strings.ToLower(b.Name)
	})
}

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func validIP(s string) bool { return net.ParseIP(s) != nil }
