package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FetchResult is the document of `fetch`.
type FetchResult struct {
	Header
	// URL and Dest are as given (the URL without its query).
	URL  string `json:"url"`
	Dest string `json:"dest"`
	// SHA256 is the digest of Dest, lower-case hex, when it matches.
	SHA256 string `json:"sha256,omitempty"`
	// Bytes is Dest's size.
	Bytes int64 `json:"bytes"`
	// AlreadyPresent is true when Dest already had the expected digest and
	// nothing was downloaded.
	AlreadyPresent bool `json:"already_present,omitempty"`
	// Seconds is how long the download took.
	Seconds float64 `json:"seconds"`
}

const fetchProgressEvery = 64 << 20

func runFetch(ctx context.Context, e *env, args []string, flags map[string]string) (document, *usageError) {
	rawURL, dest := args[0], args[1]
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, usagef("URL %q: want an http:// or https:// URL", rawURL)
	}
	want := strings.ToLower(flags["sha256"])
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return nil, &usageError{msg: fmt.Sprintf("--sha256 %q: want 64 hexadecimal digits", flags["sha256"]), flags: true}
	}
	size := int64(-1)
	if s, ok := flags["size"]; ok {
		if size, err = strconv.ParseInt(s, 10, 64); err != nil || size < 0 {
			return nil, &usageError{msg: fmt.Sprintf("--size %q: want a number of bytes", s), flags: true}
		}
	}
	if winExt(dest) == "" && winBase(dest) == "" {
		return nil, usagef("destination %q is not a file path", dest)
	}
	res := &FetchResult{URL: u.Scheme + "://" + u.Host + u.Path, Dest: dest}
	files := e.sys.Files()

	if got, n, err := fileDigest(files, dest); err == nil && got == want && (size < 0 || n == size) {
		res.SHA256, res.Bytes, res.AlreadyPresent, res.OK = got, n, true, true
		e.progress("%s already has the expected SHA-256", dest)
		return res, nil
	}
	if d := winDir(dest); d != "" {
		if err := files.MkdirAll(d); err != nil {
			res.fail("creating %s: %v", d, err)
			return res, nil
		}
	}
	start := time.Now()
	n, got, err := download(ctx, e, rawURL, dest, size)
	res.Seconds = time.Since(start).Seconds()
	res.Bytes = n
	if err == nil && got != want {
		err = fmt.Errorf("SHA-256 mismatch: got %s, want %s", got, want)
	}
	if err != nil {
		if rerr := files.Remove(dest); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			res.warn("removing the partial %s: %v", dest, rerr)
		}
		res.fail("fetching %s into %s: %v", res.URL, dest, err)
		return res, nil
	}
	res.SHA256, res.OK = got, true
	e.progress("%s: %d bytes in %.1fs, SHA-256 verified", dest, n, res.Seconds)
	return res, nil
}

// download streams url into dest through Files, hashing as it goes (on
// another core than the writing).
func download(ctx context.Context, e *env, rawURL, dest string, size int64) (int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, "", err
	}
	// No proxy: the package server is on the build host, next to the guest.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("HTTP %s", resp.Status)
	}
	if size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != size {
		return 0, "", fmt.Errorf("the server sends %d bytes, want %d", resp.ContentLength, size)
	}
	w, err := e.sys.Files().Create(dest)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	pw := &progressWriter{e: e, dest: dest, total: size}
	n, err := copyHashing(w, resp.Body, h, pw.add)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

type progressWriter struct {
	e         *env
	dest      string
	total, n  int64
	nextPrint int64
}

func (p *progressWriter) add(n int) {
	p.n += int64(n)
	if p.n >= p.nextPrint+fetchProgressEvery {
		p.nextPrint = p.n
		if p.total > 0 {
			p.e.progress("%s: %d of %d MiB", p.dest, p.n>>20, p.total>>20)
		} else {
			p.e.progress("%s: %d MiB", p.dest, p.n>>20)
		}
	}
}

// fileDigest returns the SHA-256 and size of a file.
func fileDigest(files Files, p string) (string, int64, error) {
	f, err := files.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
