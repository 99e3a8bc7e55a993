package installmedia

import (
	"bytes"
	"testing"
)

// FuzzReadWIM feeds arbitrary bytes to the WIM header and XML parser. The
// seeds are WIMs and ESDs written by wimlib and synthetic headers; a plain
// `go test` runs them, `go test -fuzz FuzzReadWIM` explores further.
func FuzzReadWIM(f *testing.F) {
	f.Add(readFile(f, buildWIM(f, server2022Images)))
	f.Add(readFile(f, buildESD(f, buildWIM(f, windows11Images))))
	f.Add(synthWIM(server2022XML, 2))
	f.Add(synthWIM(`<WIM><IMAGE INDEX="1"><NAME>Windows 11 Pro</NAME><WINDOWS><ARCH>12</ARCH></WINDOWS></IMAGE></WIM>`, 1))
	f.Add(synthWIM(`<?xml version="1.0" encoding="UTF-16"?><WIM/>`, 0))
	f.Add([]byte("MSWIM\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		images, err := readWIMImages(bytes.NewReader(data), int64(len(data)))
		images2, err2 := ReadWIMImages(bytes.NewReader(data))
		if (err == nil) != (err2 == nil) || len(images) != len(images2) {
			t.Fatalf("with size: %d images, %v; without: %d images, %v", len(images), err, len(images2), err2)
		}
		if err != nil {
			if images != nil || err.Error() == "" {
				t.Fatalf("images %v with error %q", images, err)
			}
			return
		}
		for i, img := range images {
			if img.Index != i+1 {
				t.Fatalf("image %d has index %d", i, img.Index)
			}
			// The derived values must not panic either.
			_, _ = img.VirtioDriverPath()
			_ = img.OSVersion()
			_ = img.IsServer()
		}
	})
}

// FuzzWIMXML feeds arbitrary text to the XML parser alone.
func FuzzWIMXML(f *testing.F) {
	f.Add(server2022XML)
	f.Add(`<WIM><IMAGE INDEX="2"><NAME>B</NAME></IMAGE><IMAGE INDEX="1"><NAME>A</NAME></IMAGE></WIM>`)
	f.Add(`<WIM><IMAGE INDEX="0x1"><WINDOWS><ARCH>0x9</ARCH><VERSION><BUILD>26100</BUILD></VERSION></WINDOWS></IMAGE></WIM>`)
	f.Add(`<WIM><IMAGE INDEX="1"><WINDOWS><LANGUAGES><LANGUAGE>en-US</LANGUAGE><LANGUAGE>de-DE</LANGUAGE></LANGUAGES></WINDOWS></IMAGE></WIM>`)
	f.Fuzz(func(t *testing.T, text string) {
		images, err := parseWIMXML(text)
		if err != nil {
			return
		}
		for i, img := range images {
			if img.Index != i+1 {
				t.Fatalf("image %d has index %d", i, img.Index)
			}
		}
	})
}
