package glance

import (
	"strings"
	"testing"
)

func TestLinuxAndLifecycleSettingsErrorsNameTheField(t *testing.T) {
	cases := []struct {
		raw  map[string]interface{}
		want string
	}{
		{map[string]interface{}{"properties": map[string]string{"kernel_id": "k"}}, "properties: kernel_id on a whole-disk image makes Nova boot it with a separate kernel and Ironic treat it as a partition image"},
		{map[string]interface{}{"properties": map[string]string{"ramdisk_id": "r"}}, "properties: ramdisk_id on a whole-disk image"},
		{map[string]interface{}{"layout": "uec", "properties": map[string]string{"kernel_id": "k"}}, `properties: kernel_id is set by layout = "uec"`},
		{map[string]interface{}{"layout": "partition"}, `layout: "partition" is not supported; use "disk" (one whole-disk image) or "uec"`},
		{map[string]interface{}{"container_format": "ami"}, `container_format: "ami" is a part of a UEC triple; use layout = "uec"`},
		{map[string]interface{}{"layout": "uec", "container_format": "ovf"}, `container_format: layout = "uec" sets aki, ari and ami itself`},
		{map[string]interface{}{"layout": "uec", "os_type": "windows"}, `layout: "uec" publishes a Linux kernel`},
		{map[string]interface{}{"kernel_file": "/boot/vmlinuz"}, `kernel_file, ramdisk_file: need layout = "uec"`},
		{map[string]interface{}{"layout": "uec", "kernel_file": "/nonexistent/vmlinuz"}, "kernel_file: stat /nonexistent/vmlinuz"},
		{map[string]interface{}{"os_type": "bsd"}, `os_type: "bsd" is not supported`},
		{map[string]interface{}{"retire": "purge", "family": "f", "keep_visible": 1}, `retire: "purge" is not supported; use "hide", "private-and-share-with-users" or "delete-unused"`},
		{map[string]interface{}{"retire": "delete-unused"}, "retire, retire_dry_run: act on the images beyond keep_visible"},
		{map[string]interface{}{"retire_dry_run": true}, "retire, retire_dry_run: act on the images beyond keep_visible"},
		{map[string]interface{}{"compute_endpoint": "nova:8774"}, `compute_endpoint: "nova:8774" is not an http(s) URL`},
	}
	for _, tc := range cases {
		tc.raw["image_name"] = "x"
		var p PostProcessor
		err := p.Configure(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.raw, err, tc.want)
		}
	}
	p := configure(t, map[string]interface{}{"image_name": "x", "family": "f", "keep_visible": 1})
	if p.config.Layout != LayoutDisk || p.config.Retire != RetireHide {
		t.Errorf("defaults: layout %q retire %q", p.config.Layout, p.config.Retire)
	}
}

func TestLinuxPropertiesFollowOSRelease(t *testing.T) {
	c := &Config{Family: "debian-12", Properties: map[string]string{"os_version": "12.11"}}
	src := &source{Linux: &linuxSource{PointRelease: "12.11"}}
	p := imageProperties(c, src)
	if p["os_type"] != "linux" || p["family"] != "debian-12" || p["patchlevel"] != "12.11" || p["os_version"] != "12.11" {
		t.Errorf("%v", p)
	}
	if _, ok := p["os_admin_user"]; ok {
		t.Errorf("a Linux image got the Windows os_admin_user: %v", p)
	}
}
