package installmedia

import (
	"strings"
	"testing"
)

func TestVirtioAndOSVersion(t *testing.T) {
	server := func(build int, arch string) Image {
		return Image{Name: "srv", InstallationType: "Server", ProductType: "ServerNT", Arch: arch, Version: Version{10, 0, build, 1}}
	}
	core := func(build int) Image {
		img := server(build, "amd64")
		img.InstallationType = "Server Core"
		return img
	}
	client := func(build int, arch string) Image {
		return Image{Name: "cli", InstallationType: "Client", ProductType: "WinNT", Arch: arch, Version: Version{10, 0, build, 1}}
	}
	tests := []struct {
		name    string
		img     Image
		folder  string // "" when an error is expected
		os      string
		arch    string
		path    string
		errWant string
	}{
		{"2016", server(14393, "amd64"), "2k16", "2016", "amd64", "2k16/amd64", ""},
		{"1709 SAC", server(16299, "amd64"), "2k16", "2016", "amd64", "2k16/amd64", ""},
		{"2019", server(17763, "amd64"), "2k19", "2019", "amd64", "2k19/amd64", ""},
		{"2019 last", server(19999, "amd64"), "2k19", "2019", "amd64", "2k19/amd64", ""},
		{"2022", server(20348, "amd64"), "2k22", "2022", "amd64", "2k22/amd64", ""},
		{"2022 core", core(20348), "2k22", "2022", "amd64", "2k22/amd64", ""},
		{"23H2", server(25398, "amd64"), "2k22", "2022", "amd64", "2k22/amd64", ""},
		{"2022 last", server(25999, "amd64"), "2k22", "2022", "amd64", "2k22/amd64", ""},
		{"2025", server(26100, "amd64"), "2k25", "2025", "amd64", "2k25/amd64", ""},
		{"2025 later", server(26300, "amd64"), "2k25", "2025", "amd64", "2k25/amd64", ""},
		{"2025 arm64", server(26100, "arm64"), "2k25", "2025", "ARM64", "2k25/ARM64", ""},
		{"server by product type", Image{Name: "p", ProductType: "ServerNT", Arch: "amd64", Version: Version{10, 0, 17763, 0}}, "2k19", "2019", "amd64", "2k19/amd64", ""},
		{"2012 R2", Image{Name: "old", InstallationType: "Server", Arch: "amd64", Version: Version{6, 3, 9600, 0}}, "", "", "amd64", "", "build 9600"},
		{"server 10586", server(10586, "amd64"), "", "", "amd64", "", "build 10586"},
		{"win10 1507", client(10240, "amd64"), "w10", "10", "amd64", "w10/amd64", ""},
		{"win10 22H2", client(19045, "x86"), "w10", "10", "x86", "w10/x86", ""},
		{"win11 21H2", client(22000, "amd64"), "w11", "11", "amd64", "w11/amd64", ""},
		{"win11 arm64", client(26100, "arm64"), "w11", "11", "ARM64", "w11/ARM64", ""},
		{"win11 by product type", Image{Name: "c", ProductType: "WinNT", Arch: "amd64", Version: Version{10, 0, 22631, 0}}, "w11", "11", "amd64", "w11/amd64", ""},
		{"win 8.1", client(9600, "amd64"), "", "", "amd64", "", "build 9600"},
		{"no build", Image{Name: "nb", InstallationType: "Server", Arch: "amd64"}, "", "", "amd64", "", "no Windows build number"},
		{"windows PE", Image{Name: "pe", InstallationType: "WindowsPE", Arch: "amd64", Version: Version{10, 0, 20348, 1}}, "", "", "amd64", "", `installation type "WindowsPE"`},
		{"ia64", Image{Name: "itanium", InstallationType: "Server", Arch: "ia64", Version: Version{10, 0, 20348, 1}}, "2k22", "2022", "", "", `architecture "ia64"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			folder, err := tt.img.VirtioDriverFolder()
			if tt.folder == "" {
				wantErrContains(t, err, tt.errWant, tt.img.Name)
			} else if err != nil || folder != tt.folder {
				t.Errorf("VirtioDriverFolder() = %q, %v; want %q", folder, err, tt.folder)
			}
			if got := tt.img.OSVersion(); got != tt.os {
				t.Errorf("OSVersion() = %q, want %q", got, tt.os)
			}
			if got := tt.img.VirtioArchFolder(); got != tt.arch {
				t.Errorf("VirtioArchFolder() = %q, want %q", got, tt.arch)
			}
			path, err := tt.img.VirtioDriverPath()
			if tt.path == "" {
				wantErrContains(t, err, tt.errWant)
			} else if err != nil || path != tt.path {
				t.Errorf("VirtioDriverPath() = %q, %v; want %q", path, err, tt.path)
			}
		})
	}
}

func TestIsServer(t *testing.T) {
	for _, tt := range []struct {
		img  Image
		want bool
	}{
		{Image{InstallationType: "Server"}, true},
		{Image{InstallationType: "Server Core"}, true},
		{Image{InstallationType: "server core"}, true},
		{Image{InstallationType: "Client", ProductType: "ServerNT"}, false},
		{Image{ProductType: "ServerNT"}, true},
		{Image{ProductType: "LanmanNT"}, true},
		{Image{ProductType: "WinNT"}, false},
		{Image{}, false},
	} {
		if got := tt.img.IsServer(); got != tt.want {
			t.Errorf("%+v.IsServer() = %v", tt.img, got)
		}
	}
}

func TestFindImage(t *testing.T) {
	images := []Image{
		{Index: 1, Name: "Windows Server 2022 SERVERSTANDARDCORE"},
		{Index: 2, Name: "Windows Server 2022 SERVERSTANDARD"},
		{Index: 3, Name: "Windows Server 2022 SERVERDATACENTERCORE"},
		{Index: 4, Name: "Windows Server 2022 SERVERDATACENTER"},
	}
	img, err := FindImage(images, "Windows Server 2022 SERVERDATACENTER", "x.iso")
	if err != nil || img.Index != 4 {
		t.Fatalf("exact: %+v, %v", img, err)
	}
	img, err = FindImage(images, "windows server 2022 serverstandard", "x.iso")
	if err != nil || img.Index != 2 || img.Name != "Windows Server 2022 SERVERSTANDARD" {
		t.Fatalf("case-insensitive: %+v, %v", img, err)
	}
	_, err = FindImage(images, "Windows Server 2022 Datacenter", "/isos/SERVER_EVAL.iso")
	want := `image_name "Windows Server 2022 Datacenter" is not in /isos/SERVER_EVAL.iso: available images are ` +
		`"Windows Server 2022 SERVERSTANDARDCORE", "Windows Server 2022 SERVERSTANDARD", ` +
		`"Windows Server 2022 SERVERDATACENTERCORE", "Windows Server 2022 SERVERDATACENTER"`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	// A trailing blank is not forgiven: Setup would not find the image.
	if _, err := FindImage(images, "Windows Server 2022 SERVERDATACENTER ", "x.iso"); err == nil {
		t.Fatal("matched a name with a trailing blank")
	}

	twins := []Image{{Index: 1, Name: "Custom"}, {Index: 2, Name: "CUSTOM"}}
	if img, err := FindImage(twins, "CUSTOM", "x.iso"); err != nil || img.Index != 2 {
		t.Fatalf("exact among case twins: %+v, %v", img, err)
	}
	_, err = FindImage(twins, "custom", "x.iso")
	wantErrContains(t, err, "several images", `"Custom", "CUSTOM"`)

	_, err = FindImage(nil, "A", "x.iso")
	wantErrContains(t, err, `image_name "A" is not in x.iso`, "no images")

	m := &Media{Path: "win.iso", Images: images}
	if _, err := m.FindImage("nope"); err == nil || !strings.HasPrefix(err.Error(), `image_name "nope" is not in win.iso: available images are "Windows Server 2022 SERVERSTANDARDCORE"`) {
		t.Fatalf("Media.FindImage: %v", err)
	}
}
