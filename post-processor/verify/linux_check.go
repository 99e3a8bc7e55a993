package verify

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/crypto/ssh"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

var (
	//go:embed linux/user-data.sh
	linuxUserData string
	//go:embed linux/facts.sh
	linuxFacts string
)

// LinuxUserDataMarker is where the Linux user data leaves the UUID.
const LinuxUserDataMarker = "/var/tmp/winbake-verify-user-data"

// LinuxUserData is the user data of a Linux instance: a shell script
// (cloud-init runs user data starting with "#!" as a script).
func LinuxUserData(uuid string) []byte {
	return []byte(strings.ReplaceAll(linuxUserData, "@UUID@", uuid))
}

// cloud-init's final message (cc_final_message's default):
// "Cloud-init v. 22.4.2 finished at <time>. Datasource <ds>.  Up 54.21 seconds".
var cloudInitFinished = regexp.MustCompile(`Cloud-init v\. (\S+) finished at [^\n]*?\. Datasource ([^\n]*?)\.\s+Up ([0-9.]+) seconds`)

// linuxFirstBootDone: cloud-init printed its final message.
func linuxFirstBootDone(log string) bool { return cloudInitFinished.MatchString(log) }

// linuxGrowDisk creates the instance's disk: a qcow2 overlay of the image
// of the flavor's size, which cloud-init's growpart and resizefs grow the
// root file system into.
func linuxGrowDisk(li *linuxImage, sizeMB int) func(dst string) error {
	return func(dst string) error {
		size := int64(sizeMB) << 20
		if size == 0 {
			size = li.VirtualSize + 1<<30
		}
		if size < li.VirtualSize {
			return fmt.Errorf("disk_size: %d MiB is smaller than the image (%d MiB)", sizeMB, li.VirtualSize>>20)
		}
		out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", li.Format, "-b", li.Disk, dst, strconv.FormatInt(size, 10)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("qemu-img create: %w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	}
}

// stepCheckLinux logs on over SSH with the instance's key as the image's
// default user, reads what cloud-init did, saves the report and halts when
// a check failed.
//
// Uses state: "ui", stateInput, stateInstance, StateHostPort.
type stepCheckLinux struct {
	Config    *Config
	Image     *linuxImage
	User      string
	ReportDir string
	// Dial is the SSH dial (tests); nil: ssh.Dial.
	Dial func(network, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error)
}

func (s *stepCheckLinux) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	in := state.Get(stateInput).(*inputImage)
	inst := state.Get(stateInstance).(*instance)
	port, _ := state.Get(qemuvm.StateHostPort).(int)
	serial, _ := os.ReadFile(filepath.Join(inst.Dir, qemuvm.SerialLogName))
	k := &linuxChecker{Config: s.Config, Image: s.Image, User: s.User, Inst: inst, Serial: string(serial)}

	ui.Say(fmt.Sprintf("Connecting over SSH as %s with the instance's key (up to %s)", s.User, s.Config.SSHTimeout))
	client, err := s.connect(ctx, fmt.Sprintf("127.0.0.1:%d", port), inst, k)
	if ctx.Err() != nil {
		return steps.Halt(state, ui, ctx.Err())
	}
	if err != nil {
		k.SSHErr = err
	} else {
		defer func() { _ = client.Close() }()
		k.Facts, k.FactsErr = runFacts(client)
		for _, ch := range s.Config.Checks {
			out, err := runCommand(client, ch.Command)
			k.UserChecks = append(k.UserChecks, userCheckResult{Check: ch, Output: out, Err: err})
		}
	}

	report := &Report{Image: in.DiskPath, Mode: s.Config.Mode, Instance: inst.Metadata.UUID, Hostname: s.Config.Hostname}
	k.Run(report)
	report.Finished = time.Now().UTC()
	report.Passed = len(report.Failed()) == 0
	state.Put(stateReport, report)
	dir := s.ReportDir
	if dir == "" {
		dir = in.Dir
	}
	jsonPath, _, err := report.Save(dir, in.Name)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("report_directory: writing the report: %w", err))
	}
	_ = os.WriteFile(filepath.Join(dir, in.Name+".verify-serial.log"), serial, 0o644)
	for _, line := range strings.Split(strings.TrimRight(report.Table(), "\n"), "\n") {
		ui.Say(line)
	}
	ui.Say("Report saved to " + jsonPath)
	if !report.Passed {
		return steps.Halt(state, ui, fmt.Errorf("winbake-verify: %d check(s) failed: %s; see %s", len(report.Failed()), strings.Join(report.Failed(), ", "), jsonPath))
	}
	return multistep.ActionContinue
}

func (s *stepCheckLinux) Cleanup(multistep.StateBag) {}

// connect dials until the guest's sshd accepts the key or ssh_timeout
// passes. The host key is recorded, and checked against what cloud-init
// printed on the console.
func (s *stepCheckLinux) connect(ctx context.Context, addr string, inst *instance, k *linuxChecker) (*ssh.Client, error) {
	signer, err := ssh.NewSignerFromKey(inst.Key)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	cfg := &ssh.ClientConfig{
		User: s.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			mu.Lock()
			k.HostKey = key
			mu.Unlock()
			return nil
		},
		Timeout: 30 * time.Second,
	}
	dial := s.Dial
	if dial == nil {
		dial = ssh.Dial
	}
	deadline := time.Now().Add(s.Config.SSHTimeout)
	var last error
	for {
		client, err := dial("tcp", addr, cfg)
		if err == nil {
			return client, nil
		}
		last = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no SSH logon as %s within ssh_timeout (%s): %w", s.User, s.Config.SSHTimeout, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

func runCommand(client *ssh.Client, cmd string) (string, error) {
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer func() { _ = sess.Close() }()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

// runFacts runs linux/facts.sh with sh and splits its output by fact.
func runFacts(client *ssh.Client) (map[string]string, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	defer func() { _ = sess.Close() }()
	sess.Stdin = strings.NewReader(linuxFacts)
	out, err := sess.CombinedOutput("sh -s")
	if err != nil {
		return nil, fmt.Errorf("sh -s (facts): %w: %s", err, out)
	}
	return parseFacts(string(out)), nil
}

var factHeader = regexp.MustCompile(`(?m)^==> ([a-z.-]+) <==$`)

func parseFacts(out string) map[string]string {
	facts := map[string]string{}
	idx := factHeader.FindAllStringSubmatchIndex(out, -1)
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		facts[out[m[2]:m[3]]] = strings.TrimSpace(out[m[1]:end])
	}
	return facts
}

type userCheckResult struct {
	Check  CheckConfig
	Output string
	Err    error
}

// linuxChecker turns what the console and the guest say into the report.
type linuxChecker struct {
	Config     *Config
	Image      *linuxImage
	User       string
	Inst       *instance
	Serial     string
	SSHErr     error
	HostKey    ssh.PublicKey
	Facts      map[string]string
	FactsErr   error
	UserChecks []userCheckResult
}

// cloudInitResult is /var/lib/cloud/data/result.json.
type cloudInitResult struct {
	V1 struct {
		Datasource string   `json:"datasource"`
		Errors     []string `json:"errors"`
	} `json:"v1"`
}

func (k *linuxChecker) Run(r *Report) {
	c := k.Config
	if m := cloudInitFinished.FindStringSubmatch(k.Serial); m != nil {
		r.pass("first boot completes", fmt.Sprintf("console: cloud-init %s finished after %s s, datasource %s", m[1], m[3], m[2]))
	} else {
		r.fail("first boot completes", "the console shows no \"Cloud-init v. ... finished\" line: cloud-init did not finish (is it installed and enabled, and the kernel's console on ttyS0?)")
	}
	if k.SSHErr != nil {
		r.fail("SSH logs on with the instance's key", fmt.Sprintf("%v (cloud-init puts the metadata's public key into ~%s/.ssh/authorized_keys)", k.SSHErr, k.User))
		for _, name := range []string{"cloud-init finished without errors", "metadata from the config drive", "hostname set", "user data ran", "default user has sudo", "root file system grew"} {
			r.add(name, ResultNotRun, "no SSH logon")
		}
		k.userChecks(r)
		return
	}
	r.pass("SSH logs on with the instance's key", fmt.Sprintf("logged on as %s with the key of the metadata's public_keys", k.User))
	if k.HostKey != nil {
		blob := base64.StdEncoding.EncodeToString(k.HostKey.Marshal())
		fp := ssh.FingerprintSHA256(k.HostKey)
		if strings.Contains(k.Serial, blob) || strings.Contains(k.Serial, fp) {
			r.pass("SSH host key on the console", fmt.Sprintf("%s %s is among the host keys cloud-init printed", k.HostKey.Type(), fp))
		} else {
			r.fail("SSH host key on the console", fmt.Sprintf("sshd presented %s %s, which cloud-init did not print on the console (-----BEGIN SSH HOST KEY KEYS-----): users cannot check the host key", k.HostKey.Type(), fp))
		}
	}
	if k.FactsErr != nil {
		r.fail("cloud-init finished without errors", k.FactsErr.Error())
		return
	}
	f := k.Facts

	var res cloudInitResult
	status := f["status"]
	switch err := json.Unmarshal([]byte(f["result.json"]), &res); {
	case err != nil:
		r.fail("cloud-init finished without errors", fmt.Sprintf("/var/lib/cloud/data/result.json: %s", firstLine(f["result.json"])))
	case len(res.V1.Errors) > 0:
		r.fail("cloud-init finished without errors", fmt.Sprintf("result.json errors: %s", strings.Join(res.V1.Errors, "; ")))
	case !strings.Contains(status, "status: done"):
		r.fail("cloud-init finished without errors", "cloud-init status --long: "+oneLine(status))
	default:
		r.pass("cloud-init finished without errors", fmt.Sprintf("result.json: datasource %s, no errors; cloud-init status: done", res.V1.Datasource))
	}

	id := f["instance-id"]
	switch {
	case !strings.Contains(res.V1.Datasource, "ConfigDrive"):
		r.fail("metadata from the config drive", fmt.Sprintf("cloud-init used datasource %q, not ConfigDrive (config-2)", res.V1.Datasource))
	case id != k.Inst.Metadata.UUID:
		r.fail("metadata from the config drive", fmt.Sprintf("instance-id %q, the metadata's uuid is %s", id, k.Inst.Metadata.UUID))
	default:
		r.pass("metadata from the config drive", fmt.Sprintf("%s; instance-id %s", res.V1.Datasource, id))
	}

	if h := f["hostname"]; h == c.Hostname {
		r.pass("hostname set", "hostname: "+h)
	} else {
		r.fail("hostname set", fmt.Sprintf("hostname %q, the metadata says %q", h, c.Hostname))
	}
	if u := f["user-data"]; u == k.Inst.Metadata.UUID {
		r.pass("user data ran", fmt.Sprintf("%s holds the instance UUID", LinuxUserDataMarker))
	} else {
		r.fail("user data ran", fmt.Sprintf("%s: %s", LinuxUserDataMarker, firstLine(u)))
	}
	// sudo may warn on stderr (an unresolvable hostname) and still run.
	if s := f["sudo"]; lastLine(s) == "0" {
		r.pass("default user has sudo", fmt.Sprintf("sudo -n id -u as %s: %s", k.User, oneLine(s)))
	} else {
		r.fail("default user has sudo", fmt.Sprintf("sudo -n id -u as %s: %s", k.User, firstLine(s)))
	}
	size, err := strconv.ParseInt(strings.TrimSpace(f["root-size"]), 10, 64)
	switch {
	case err != nil:
		r.fail("root file system grew", "df: "+firstLine(f["root-size"]))
	case size > k.Image.VirtualSize:
		r.pass("root file system grew", fmt.Sprintf("%s is %d MiB, more than the whole image (%d MiB): growpart and resizefs ran", f["root-device"], size>>20, k.Image.VirtualSize>>20))
	default:
		r.fail("root file system grew", fmt.Sprintf("%s is %d MiB on a disk of more than %d MiB: cloud-init's growpart/resizefs did not grow it (is cloud-guest-utils installed?)", f["root-device"], size>>20, k.Image.VirtualSize>>20))
	}
	k.userChecks(r)
}

func (k *linuxChecker) userChecks(r *Report) {
	if k.SSHErr != nil {
		for _, ch := range k.Config.Checks {
			r.add(ch.Name, ResultNotRun, "no SSH logon")
		}
		return
	}
	for _, u := range k.UserChecks {
		var exit *ssh.ExitError
		switch {
		case u.Err != nil && !errors.As(u.Err, &exit):
			r.fail(u.Check.Name, u.Err.Error())
		case strings.Contains(u.Output, u.Check.Contains):
			r.pass(u.Check.Name, oneLine(u.Output))
		default:
			r.fail(u.Check.Name, fmt.Sprintf("output lacks %q: %s", u.Check.Contains, oneLine(u.Output)))
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "(empty)"
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
