package compress

import (
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]interface{}
		// want lists substrings, one per expected error.
		want []string
		// sdk: the SDK's decoder reports this one, as a single error.
		sdk bool
	}{
		{
			name: "format missing",
			cfg:  map[string]interface{}{},
			want: []string{"format: is required; use one of qcow2, raw, vhdx, vmdk, dd.gz, dd.tgz, dd.xz"},
		},
		{
			name: "format unknown",
			cfg:  map[string]interface{}{"format": "zip"},
			want: []string{`format: "zip" is not supported; use one of qcow2, raw, vhdx, vmdk, dd.gz, dd.tgz, dd.xz`},
		},
		{
			name: "qcow2_compression unknown",
			cfg:  map[string]interface{}{"format": "qcow2", "qcow2_compression": "lz4"},
			want: []string{`qcow2_compression: "lz4" is not supported; use one of zstd, zlib, none`},
		},
		{
			name: "qcow2_compression with another format",
			cfg:  map[string]interface{}{"format": "vmdk", "qcow2_compression": "zlib"},
			want: []string{`qcow2_compression: only applies to format qcow2, not vmdk`},
		},
		{
			name: "gzip level too high",
			cfg:  map[string]interface{}{"format": "dd.gz", "compression_level": 10},
			want: []string{"compression_level: 10 is out of range for format dd.gz; use 1 (fastest) to 9 (smallest)"},
		},
		{
			name: "gzip level zero",
			cfg:  map[string]interface{}{"format": "dd.tgz", "compression_level": 0},
			want: []string{"compression_level: 0 is out of range for format dd.tgz; use 1 (fastest) to 9 (smallest)"},
		},
		{
			name: "xz level negative",
			cfg:  map[string]interface{}{"format": "dd.xz", "compression_level": -1},
			want: []string{"compression_level: -1 is out of range for format dd.xz; use 0 (fastest) to 9 (smallest)"},
		},
		{
			name: "level with qcow2",
			cfg:  map[string]interface{}{"format": "qcow2", "compression_level": 3},
			want: []string{"compression_level: format qcow2 has no compression level; remove it (qcow2 compression is chosen with qcow2_compression)"},
		},
		{
			name: "level with vmdk",
			cfg:  map[string]interface{}{"format": "vmdk", "compression_level": 3},
			want: []string{"compression_level: format vmdk has no compression level; remove it (compression_level applies to dd.gz, dd.tgz and dd.xz)"},
		},
		{
			name: "output template broken",
			cfg:  map[string]interface{}{"format": "raw", "output": "{{.InputDir"},
			want: []string{"'output'"},
			sdk:  true,
		},
		{
			name: "output template unknown field",
			cfg:  map[string]interface{}{"format": "raw", "output": "{{.Nope}}/x.raw"},
			want: []string{"output: "},
		},
		{
			name: "format and formats",
			cfg:  map[string]interface{}{"format": "qcow2", "formats": []string{"qcow2", "dd.gz"}},
			want: []string{`format and formats: set one of them`},
		},
		{
			name: "formats with an unknown one",
			cfg:  map[string]interface{}{"formats": []string{"qcow2", "zip"}},
			want: []string{`formats[1]: "zip" is not supported; use one of qcow2, raw, vhdx, vmdk, dd.gz, dd.tgz, dd.xz`},
		},
		{
			name: "formats with a duplicate",
			cfg:  map[string]interface{}{"formats": []string{"dd.gz", "qcow2", "dd.gz"}},
			want: []string{`formats[2]: "dd.gz" is listed twice`},
		},
		{
			name: "formats into one file",
			cfg:  map[string]interface{}{"formats": []string{"qcow2", "dd.gz"}, "output": "out/disk.img"},
			want: []string{`output: "out/disk.img" names the same file for every format of formats; put {{.Ext}} in it`},
		},
		{
			name: "level out of range for one of the formats",
			cfg:  map[string]interface{}{"formats": []string{"dd.xz", "dd.gz"}, "compression_level": 0},
			want: []string{"compression_level: 0 is out of range for format dd.gz; use 1 (fastest) to 9 (smallest)"},
		},
		{
			name: "qcow2_compression without qcow2 among formats",
			cfg:  map[string]interface{}{"formats": []string{"vhdx", "dd.gz"}, "qcow2_compression": "zlib"},
			want: []string{"qcow2_compression: only applies to format qcow2, not vhdx, dd.gz; remove it"},
		},
		{
			name: "several errors at once",
			cfg:  map[string]interface{}{"format": "zip", "qcow2_compression": "lz4"},
			want: []string{`format: "zip" is not supported`, `qcow2_compression: "lz4" is not supported`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.Prepare(tc.cfg)
			if err == nil {
				t.Fatalf("Prepare(%v) succeeded", tc.cfg)
			}
			if tc.sdk {
				if !strings.Contains(err.Error(), tc.want[0]) {
					t.Errorf("error = %q, want it to contain %q", err, tc.want[0])
				}
				return
			}
			merr, ok := err.(*packersdk.MultiError)
			if !ok {
				t.Fatalf("error is %T, want *packersdk.MultiError: %v", err, err)
			}
			if len(merr.Errors) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(merr.Errors), len(tc.want), err)
			}
			for i, want := range tc.want {
				if got := merr.Errors[i].Error(); !strings.Contains(got, want) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, want)
				}
			}
		})
	}
}

func TestConfigUnknownKey(t *testing.T) {
	var c Config
	err := c.Prepare(map[string]interface{}{"format": "qcow2", "compresion_level": 3})
	if err == nil || !strings.Contains(err.Error(), "compresion_level") {
		t.Fatalf("err = %v, want the unknown key named", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	cases := []struct {
		cfg       map[string]interface{}
		format    string
		qcow2     string
		level     int
		keepInput bool
	}{
		{cfg: map[string]interface{}{"format": "qcow2"}, format: "qcow2", qcow2: "zstd"},
		{cfg: map[string]interface{}{"format": " QCOW2 ", "qcow2_compression": "ZLIB"}, format: "qcow2", qcow2: "zlib"},
		{cfg: map[string]interface{}{"format": "raw", "keep_input_artifact": true}, format: "raw", keepInput: true},
		{cfg: map[string]interface{}{"format": "dd.gz"}, format: "dd.gz", level: 5},
		{cfg: map[string]interface{}{"format": "dd.tgz", "compression_level": 9}, format: "dd.tgz", level: 9},
		{cfg: map[string]interface{}{"format": "dd.xz"}, format: "dd.xz", level: 6},
		{cfg: map[string]interface{}{"format": "dd.xz", "compression_level": 0}, format: "dd.xz", level: 0},
	}
	for _, tc := range cases {
		var c Config
		if err := c.Prepare(tc.cfg); err != nil {
			t.Errorf("Prepare(%v): %v", tc.cfg, err)
			continue
		}
		spec, _ := lookupFormat(c.Format)
		if c.Format != tc.format || c.Qcow2Compression != tc.qcow2 || c.KeepInputArtifact != tc.keepInput ||
			(spec.takesLevel() && c.level(spec) != tc.level) {
			t.Errorf("Prepare(%v) = format %q, qcow2_compression %q, level %d, keep %v; want %q, %q, %d, %v",
				tc.cfg, c.Format, c.Qcow2Compression, c.level(spec), c.KeepInputArtifact,
				tc.format, tc.qcow2, tc.level, tc.keepInput)
		}
	}
}

// Interpolation of other fields happens at Configure time, output's later.
func TestConfigInterpolation(t *testing.T) {
	var c Config
	err := c.Prepare(map[string]interface{}{
		"format":                "{{user `fmt`}}",
		"output":                "{{user `dir`}}/{{.InputName}}.{{.Ext}}",
		"packer_user_variables": map[string]string{"fmt": "vhdx", "dir": "/images"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != "vhdx" {
		t.Errorf("format = %q, want vhdx", c.Format)
	}
	if c.Output != "{{user `dir`}}/{{.InputName}}.{{.Ext}}" {
		t.Errorf("output was rendered too early: %q", c.Output)
	}
	got, err := c.renderOutput(c.Output, outputTemplateData{InputDir: "/in", InputName: "win", Ext: "vhdx"})
	if err != nil {
		t.Fatal(err)
	}
	if got != "/images/win.vhdx" {
		t.Errorf("rendered output = %q, want /images/win.vhdx", got)
	}
}

func TestConfigSpec(t *testing.T) {
	spec := new(PostProcessor).ConfigSpec()
	for _, key := range []string{"format", "qcow2_compression", "compression_level", "output", "keep_input_artifact"} {
		if _, ok := spec[key]; !ok {
			t.Errorf("HCL2 spec has no %q", key)
		}
	}
}
