package testguest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// Catalog is the JSON form of a servicing catalog (winsim.Options.Packages),
// as internal/testing/cmd/winbake-guest reads it:
//
//	{
//	  "packages": [
//	    {"file": "ssu-20348.2700-x64.cab", "result": "installs"},
//	    {"file": "windows10.0-kb5044281-x64.msu", "result": "reboot_required",
//	     "requires_ssu": "ssu-20348.2700-x64.cab", "ubr": 2762,
//	     "boot_servicing": "20s"},
//	    {"file": "windows10.0-kb5000000-x64.cab", "result": "not_applicable"}
//	  ]
//	}
//
// Unknown fields are errors. Durations are Go durations ("1.5s", "2m").
type Catalog struct {
	Packages []CatalogPackage `json:"packages"`
}

// CatalogPackage is one winsim.Package; see its fields for the meaning.
type CatalogPackage struct {
	File string `json:"file"`
	// Result is "installs" (exit 0), "reboot_required" (3010) or
	// "not_applicable" (0x800F081E).
	Result            string   `json:"result"`
	Identity          string   `json:"identity,omitempty"`
	Contents          []string `json:"contents,omitempty"`
	Preinstalled      bool     `json:"preinstalled,omitempty"`
	RequiresSSU       string   `json:"requires_ssu,omitempty"`
	Failures          int      `json:"failures,omitempty"`
	FailureCode       uint32   `json:"failure_code,omitempty"`
	SecondReboot      bool     `json:"second_reboot,omitempty"`
	InstallTime       Duration `json:"install_time,omitzero"`
	ShutdownServicing Duration `json:"shutdown_servicing,omitzero"`
	BootServicing     Duration `json:"boot_servicing,omitzero"`
	UBR               int      `json:"ubr,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"1.5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

var results = map[string]winsim.Result{
	"installs":        winsim.Installs,
	"reboot_required": winsim.InstallsRebootRequired,
	"not_applicable":  winsim.NotApplicable,
}

// ParseCatalog reads a JSON catalog and returns its packages. The
// simulated Windows checks them further (winsim.New).
func ParseCatalog(r io.Reader) ([]winsim.Package, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if dec.More() {
		return nil, errors.New("catalog: data after the JSON object")
	}
	var out []winsim.Package
	for i, p := range c.Packages {
		res, ok := results[p.Result]
		if !ok {
			names := make([]string, 0, len(results))
			for k := range results {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("catalog: package %d (%q): result %q, want one of %s", i, p.File, p.Result, strings.Join(names, ", "))
		}
		if p.File == "" {
			return nil, fmt.Errorf("catalog: package %d has no file", i)
		}
		out = append(out, winsim.Package{
			FileName:          p.File,
			Identity:          p.Identity,
			Contents:          p.Contents,
			Result:            res,
			Preinstalled:      p.Preinstalled,
			RequiresSSU:       p.RequiresSSU,
			Failures:          p.Failures,
			FailureCode:       p.FailureCode,
			SecondReboot:      p.SecondReboot,
			InstallTime:       time.Duration(p.InstallTime),
			ShutdownServicing: time.Duration(p.ShutdownServicing),
			BootServicing:     time.Duration(p.BootServicing),
			UBR:               p.UBR,
		})
	}
	return out, nil
}

// LoadCatalog reads a JSON catalog file.
func LoadCatalog(path string) ([]winsim.Package, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pkgs, err := ParseCatalog(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pkgs, nil
}

// WindowsVersions are the Windows releases a guest can be by name (see
// ParseWindows). Product names are what the registry says (Windows 11
// still calls itself "Windows 10" in ProductName).
var WindowsVersions = map[string]winsim.Windows{
	"2016": {ProductName: "Windows Server 2016 Datacenter", EditionID: "ServerDatacenter", InstallationType: "Server", Build: 14393, UBR: 6452},
	"2019": {ProductName: "Windows Server 2019 Datacenter", EditionID: "ServerDatacenter", InstallationType: "Server", Build: 17763, UBR: 5122},
	"2022": winsim.DefaultWindows,
	"2025": {ProductName: "Windows Server 2025 Datacenter", EditionID: "ServerDatacenter", InstallationType: "Server", Build: 26100, UBR: 1742, DisplayVersion: "24H2"},
	"10":   {ProductName: "Windows 10 Pro", EditionID: "Professional", InstallationType: "Client", Build: 19045, UBR: 3693, DisplayVersion: "22H2"},
	"11":   {ProductName: "Windows 10 Pro", EditionID: "Professional", InstallationType: "Client", Build: 22631, UBR: 2715, DisplayVersion: "23H2"},
}

// ParseWindows is a release name of WindowsVersions ("2016", "2019",
// "2022", "2025", "10", "11") or a JSON winsim.Windows object
// ({"product_name": ..., "build": ...}).
func ParseWindows(s string) (winsim.Windows, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		var w winsim.Windows
		if err := dec.Decode(&w); err != nil {
			return winsim.Windows{}, fmt.Errorf("windows: %w", err)
		}
		if w.ProductName == "" || w.Build == 0 {
			return winsim.Windows{}, errors.New("windows: product_name and build are required")
		}
		return w, nil
	}
	if w, ok := WindowsVersions[s]; ok {
		return w, nil
	}
	names := make([]string, 0, len(WindowsVersions))
	for k := range WindowsVersions {
		names = append(names, k)
	}
	sort.Strings(names)
	return winsim.Windows{}, fmt.Errorf("windows: %q is neither a JSON object nor one of %s", s, strings.Join(names, ", "))
}
