package compress

import "strings"

// outputTemplateData is what `output` is rendered with.
type outputTemplateData struct {
	InputDir    string
	InputName   string
	Ext         string
	BuildName   string
	BuilderType string
}

// formatSpec describes one output format.
type formatSpec struct {
	// Name is the value of `format`, also used as the file extension.
	Name string
	// QemuFormat is the qemu-img output format; empty for the dd.* formats.
	QemuFormat string
	// MaasFiletype is the MAAS boot-resource filetype, empty if none.
	MaasFiletype string
	// DiskFormat is the OpenStack Glance disk_format, empty if none.
	DiskFormat string
	// MinLevel, MaxLevel bound compression_level; both zero means the format
	// takes no level.
	MinLevel, MaxLevel int
	// DefaultLevel is used when compression_level is not set.
	DefaultLevel int
}

var formats = []formatSpec{
	{Name: "qcow2", QemuFormat: "qcow2", DiskFormat: "qcow2"},
	{Name: "raw", QemuFormat: "raw", DiskFormat: "raw"},
	{Name: "vhdx", QemuFormat: "vhdx", DiskFormat: "vhdx"},
	{Name: "vmdk", QemuFormat: "vmdk", DiskFormat: "vmdk"},
	{Name: "dd.gz", MaasFiletype: "ddgz", MinLevel: 1, MaxLevel: 9, DefaultLevel: gzipDefaultLevel},
	{Name: "dd.tgz", MaasFiletype: "ddtgz", MinLevel: 1, MaxLevel: 9, DefaultLevel: gzipDefaultLevel},
	{Name: "dd.xz", MaasFiletype: "ddxz", MinLevel: 0, MaxLevel: 9, DefaultLevel: xzDefaultLevel},
}

func lookupFormat(name string) (formatSpec, bool) {
	for _, f := range formats {
		if f.Name == name {
			return f, true
		}
	}
	return formatSpec{}, false
}

func formatNames() string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

func (f formatSpec) takesLevel() bool { return f.MinLevel != 0 || f.MaxLevel != 0 }
