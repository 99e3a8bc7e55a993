package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	payload := []byte(strings.Repeat("MSCF package bytes ", 1000))
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path != "/tok/0/x.cab" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(payload)
	}))
	defer srv.Close()
	sys := newFakeSystem(t)
	dest := `C:\ProgramData\winbake\updates\x.cab`

	var res FetchResult
	if code, _ := run(t, sys, &res, "fetch", srv.URL+"/tok/0/x.cab", dest, "--sha256", digest, "--size", "19000"); code != ExitOK || !res.OK || res.SHA256 != digest || res.Bytes != 19000 || res.AlreadyPresent {
		t.Fatalf("fetch: code %d %+v", code, res)
	}
	if b, ok := sys.files.get(dest); !ok || string(b) != string(payload) {
		t.Fatalf("dest holds %d bytes", len(b))
	}
	// Again: the file is there with the right digest; nothing downloaded.
	res = FetchResult{}
	if run(t, sys, &res, "fetch", srv.URL+"/tok/0/x.cab", dest, "--sha256", digest); !res.OK || !res.AlreadyPresent || hits != 1 {
		t.Errorf("second fetch: %+v, %d requests", res, hits)
	}
	// A wrong digest: failed, and the bad file is removed.
	other := `C:\ProgramData\winbake\updates\y.cab`
	res = FetchResult{}
	if code, _ := run(t, sys, &res, "fetch", srv.URL+"/tok/0/x.cab", other, "--sha256", strings.Repeat("0", 64)); code != ExitFailed || res.OK || !strings.Contains(res.Error, "SHA-256 mismatch") {
		t.Errorf("mismatch: code %d %+v", code, res)
	}
	if sys.files.exists(other) {
		t.Error("the file with the wrong digest was kept")
	}
	// 404 names the status.
	res = FetchResult{}
	if run(t, sys, &res, "fetch", srv.URL+"/tok/1/z.cab", other, "--sha256", digest); res.OK || !strings.Contains(res.Error, "404") {
		t.Errorf("404: %+v", res)
	}
	var u UsageResult
	if code, _ := run(t, sys, &u, "fetch", "ftp://host/x.cab", dest, "--sha256", digest); code != ExitUsage {
		t.Errorf("ftp URL: code %d", code)
	}
	if code, _ := run(t, sys, &u, "fetch", srv.URL+"/x", dest); code != ExitUsage || !strings.Contains(u.Error, "--sha256") {
		t.Errorf("no --sha256: code %d %+v", code, u)
	}
}

// install --journal: a completed install is answered from the journal, a
// running one of this boot is reported in progress, one cut off by a
// reboot is run again.
func TestInstallJournal(t *testing.T) {
	sys := newFakeSystem(t)
	cab := `C:\u\x.cab`
	journal := `C:\ProgramData\winbake\updates\journal\x.0.json`
	log := `C:\Windows\Logs\winbake\x.cab.dism.log`
	sys.files.put(cab, []byte("MSCF"))
	sys.procs.expect(call{path: dismExe, args: dismArgs(cab, log), code: 3010})
	var res InstallResult
	if code, _ := run(t, sys, &res, "install", cab, "--journal", journal); code != ExitOK || res.Result != InstalledRebootRequired || res.FromJournal {
		t.Fatalf("first install: %d %+v", code, res)
	}
	res = InstallResult{}
	if run(t, sys, &res, "install", cab, "--journal", journal); res.Result != InstalledRebootRequired || !res.FromJournal || !res.OK || res.ExitCode != 3010 {
		t.Errorf("repeated install: %+v", res)
	}
	// A record of a run still going in this boot.
	running := `{"package":"C:\\u\\x.cab","state":"running","boot_time":"` + sys.power.boot.UTC().Format(time.RFC3339Nano) + `","started":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	sys.files.put(journal, []byte(running))
	res = InstallResult{}
	if code, _ := run(t, sys, &res, "install", cab, "--journal", journal); code != ExitFailed || !res.InProgress || res.OK {
		t.Errorf("in progress: %d %+v", code, res)
	}
	// The same record after a reboot: run again.
	sys.power.boot = sys.power.boot.Add(time.Hour)
	sys.procs.expect(call{path: dismExe, args: dismArgs(cab, log), code: 0})
	res = InstallResult{}
	if run(t, sys, &res, "install", cab, "--journal", journal); res.Result != Installed || res.FromJournal || res.InProgress {
		t.Errorf("after a reboot: %+v", res)
	}
}

func TestAppendLineAndRemove(t *testing.T) {
	sys := newFakeSystem(t)
	file := `C:\Windows\Setup\Scripts\SetupComplete.cmd`
	sys.files.put(file, []byte("@echo off\r\nsc config cloudbase-init start= auto"))
	line := `echo call x >> "%windir%\y.cmd"`
	enc := base64.StdEncoding.EncodeToString([]byte(line))
	var res AppendLineResult
	if run(t, sys, &res, "append-line", file, enc); !res.OK || !res.Appended {
		t.Fatalf("%+v", res)
	}
	res = AppendLineResult{}
	if run(t, sys, &res, "append-line", file, enc); !res.OK || !res.AlreadyPresent {
		t.Errorf("twice: %+v", res)
	}
	if b, _ := sys.files.get(file); string(b) != "@echo off\r\nsc config cloudbase-init start= auto\r\n"+line+"\r\n" {
		t.Errorf("file %q", b)
	}
	res = AppendLineResult{}
	if run(t, sys, &res, "append-line", `C:\x\other.cmd`, enc, "--if-exists", `C:\Program Files\Cloudbase Solutions`); !res.OK || !res.Skipped || sys.files.exists(`C:\x\other.cmd`) {
		t.Errorf("--if-exists a missing path: %+v", res)
	}
	var rm RemoveResult
	if run(t, sys, &rm, "remove", file); !rm.OK || !rm.Removed || sys.files.exists(file) {
		t.Errorf("remove: %+v", rm)
	}
	rm = RemoveResult{}
	if run(t, sys, &rm, "remove", file); !rm.OK || rm.Removed {
		t.Errorf("remove a missing file: %+v", rm)
	}
}
