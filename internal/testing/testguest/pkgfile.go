package testguest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/agent/cabinet"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// PackageFile describes a synthetic update package: a real cabinet with a
// Microsoft package's metadata that the simulated Windows installs as
// Spec says (winsim.PackageSpecMember). Tests and the stand-in VM use it
// where the guest's catalog is not set up in advance.
type PackageFile struct {
	// Name is the file name, .msu or .cab ("windows10.0-kb5044281-x64.msu").
	Name string
	// KB is the article number without "KB" ("5044281").
	KB string
	// PackageName is update.mum's assemblyIdentity name:
	// "Package_for_ServicingStack_2700", "Package_for_RollupFix",
	// "Package_for_DotNetRollup_481", "Package_for_KB5000010".
	PackageName string
	// Version is the identity's version ("20348.2762.1.8").
	Version string
	// ProductName and AppliesTo go into an .msu's pkgProperties.txt
	// ("Windows Server 2022", "Security Updates").
	ProductName, AppliesTo string
	Spec                   winsim.PackageSpec
	// Padding adds a payload member of this many bytes.
	Padding int
	// WimLayout builds an .msu the way Windows 11 24H2 / Server 2025
	// cumulative updates come: the payload is Windows11.0-KB<n>-x64.wim
	// (+ .psf) instead of .cab files, which DISM adds from the .msu itself
	// and, for a checkpoint chain, together with the checkpoint .msu files
	// in the same folder. The simulated .wim is the synthetic cabinet the
	// stand-in reads its identity and behaviour from.
	WimLayout bool
}

// Identity is the CBS identity the package installs as.
func (p PackageFile) Identity() string {
	return p.PackageName + "~31bf3856ad364e35~amd64~~" + p.Version
}

// Build returns the package file's bytes.
func (p PackageFile) Build() ([]byte, error) {
	ext := strings.ToLower(path.Ext(p.Name))
	if ext != ".msu" && ext != ".cab" || p.KB == "" || p.PackageName == "" || p.Version == "" {
		return nil, fmt.Errorf("testguest: package file %q needs a .msu or .cab name, KB, PackageName and Version", p.Name)
	}
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		return nil, err
	}
	mum := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<assembly xmlns="urn:schemas-microsoft-com:asm.v3" manifestVersion="1.0" description="Fix for KB%[1]s" displayName="KB%[1]s" company="Microsoft Corporation" supportInformation="http://support.microsoft.com/?kbid=%[1]s">
  <assemblyIdentity name="%[2]s" version="%[3]s" processorArchitecture="amd64" language="neutral" buildType="release" publicKeyToken="31bf3856ad364e35"/>
  <package identifier="KB%[1]s" releaseType="Security Update" restart="possible"/>
</assembly>
`, p.KB, p.PackageName, p.Version)
	members := []cabinet.Member{
		{Name: "update.mum", Data: []byte(mum)},
		{Name: winsim.PackageSpecMember, Data: spec},
	}
	if p.Padding > 0 {
		members = append(members, cabinet.Member{Name: "payload.bin", Data: bytes.Repeat([]byte{0x5A}, p.Padding)})
	}
	var inner bytes.Buffer
	if err := cabinet.Write(&inner, members); err != nil {
		return nil, err
	}
	if ext == ".cab" {
		return inner.Bytes(), nil
	}
	stem := strings.TrimSuffix(p.Name, path.Ext(p.Name))
	innerName := fmt.Sprintf("Windows10.0-KB%s-x64.cab", p.KB)
	payload := []cabinet.Member{{Name: innerName, Data: inner.Bytes()}}
	if p.WimLayout {
		innerName = fmt.Sprintf("Windows11.0-KB%s-x64.wim", p.KB)
		payload = []cabinet.Member{
			{Name: innerName, Data: inner.Bytes()},
			{Name: fmt.Sprintf("Windows11.0-KB%s-x64.psf", p.KB), Data: []byte("PSTREAM simulated express payload")},
		}
	}
	var scan bytes.Buffer
	if err := cabinet.Write(&scan, []cabinet.Member{{Name: "package.xml", Data: []byte("<OfflineSyncPackage/>")}}); err != nil {
		return nil, err
	}
	props := fmt.Sprintf("ApplicabilityInfo=\"Windows Server 2022\"\r\nApplies to=\"%s\"\r\nBuild Date=\"2026/11/01\"\r\n"+
		"Company=\"Microsoft Corporation\"\r\nFile Version=\"%s\"\r\nInstallation Type=\"FULL\"\r\n"+
		"Installer Engine=\"Component Based Servicing\"\r\nKB Article Number=\"%s\"\r\nLanguage=\"ALL\"\r\n"+
		"Package Type=\"Update\"\r\nProcessor Architecture=\"amd64\"\r\nProduct Name=\"%s\"\r\n"+
		"Support Link=\"http://support.microsoft.com?kbid=%s\"\r\n", p.AppliesTo, p.Version, p.KB, p.ProductName, p.KB)
	xmlManifest := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend"><servicing><package action="install"><assemblyIdentity name="%s" version="%s" processorArchitecture="amd64" language="neutral" publicKeyToken="31bf3856ad364e35"/><source location="%%configsetroot%%\%s"/></package></servicing></unattend>
`, p.PackageName, p.Version, innerName)
	var msu bytes.Buffer
	msuMembers := append([]cabinet.Member{{Name: "WSUSSCAN.cab", Data: scan.Bytes()}}, payload...)
	msuMembers = append(msuMembers, cabinet.Member{Name: stem + "-pkgProperties.txt", Data: []byte(props)})
	if !p.WimLayout {
		msuMembers = append(msuMembers, cabinet.Member{Name: stem + ".xml", Data: []byte(xmlManifest)})
	}
	msuMembers = append(msuMembers, cabinet.Member{Name: winsim.PackageSpecMember, Data: spec})
	err = cabinet.Write(&msu, msuMembers)
	return msu.Bytes(), err
}
