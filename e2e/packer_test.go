//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pluginSource = "github.com/winbake/winbake"

// packerEnv is a Packer installation isolated from the user's: its own
// plugin and config directories, no update checks, no telemetry.
type packerEnv struct {
	packer     string
	pluginPath string
	configDir  string
}

var installed *packerEnv

func TestMain(m *testing.M) {
	packer, plugin := os.Getenv("WINBAKE_PACKER"), os.Getenv("WINBAKE_PLUGIN_BINARY")
	if packer == "" || plugin == "" {
		fmt.Fprintln(os.Stderr, "e2e: WINBAKE_PACKER and WINBAKE_PLUGIN_BINARY must name the packer and plugin binaries; run `make e2e`")
		os.Exit(2)
	}
	root, err := os.MkdirTemp("", "winbake-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	installed = &packerEnv{
		packer:     packer,
		pluginPath: filepath.Join(root, "plugins"),
		configDir:  filepath.Join(root, "config"),
	}
	out, err := installed.run("", "plugins", "install", "--path", plugin, pluginSource)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: installing the plugin failed: %v\n%s", err, out)
		os.RemoveAll(root)
		os.Exit(1)
	}
	code := m.Run()
	if err := stopBridgeLab(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.RemoveAll(root)
	os.Exit(code)
}

func (e *packerEnv) environ() []string {
	env := []string{
		"PACKER_PLUGIN_PATH=" + e.pluginPath,
		"PACKER_CONFIG_DIR=" + e.configDir,
		"CHECKPOINT_DISABLE=1",
		"PACKER_NO_COLOR=1",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PACKER_") {
			env = append(env, kv)
		}
	}
	return env
}

// run executes packer in dir and returns its combined output.
func (e *packerEnv) run(dir string, args ...string) (string, error) {
	cmd := exec.Command(e.packer, args...)
	cmd.Dir = dir
	cmd.Env = e.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Minute):
		_ = cmd.Process.Kill()
		<-done //nolint:errcheck // only the end matters here
		return out.String(), fmt.Errorf("packer %s timed out", strings.Join(args, " "))
	}
}

// command runs packer with env (environ() and more) and returns its output.
// With terminal, packer runs in a pseudo-terminal (util-linux script), as
// when a person runs it: Packer then draws progress bars.
func (e *packerEnv) command(terminal bool, env []string, args ...string) ([]byte, error) {
	name, argv := e.packer, args
	if terminal {
		quoted := []string{shellQuote(e.packer)}
		for _, a := range args {
			quoted = append(quoted, shellQuote(a))
		}
		name, argv = "script", []string{"-qefc", strings.Join(quoted, " "), "/dev/null"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Env = env
	return cmd.CombinedOutput()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestPluginIsInstalled(t *testing.T) {
	t.Parallel()
	out, err := installed.run("", "plugins", "installed")
	if err != nil {
		t.Fatalf("packer plugins installed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "packer-plugin-winbake_v") {
		t.Fatalf("winbake is not among the installed plugins:\n%s", out)
	}
}

// Every template users read (example/, demo/) is packer-fmt clean and
// validates with the values its users set: scripts/validate-examples.sh,
// which the demo runs too, against the plugin as built.
func TestExamplesAreFormattedAndValid(t *testing.T) {
	t.Parallel()
	examples, err := filepath.Glob(filepath.Join("..", "example", "*.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) == 0 {
		t.Fatal("no templates in example/")
	}
	for _, example := range examples {
		if out, err := installed.run("", "validate", "-syntax-only", example); err != nil {
			t.Errorf("packer validate -syntax-only %s: %v\n%s", example, err, out)
		}
	}
	cmd := exec.Command("bash", filepath.Join("scripts", "validate-examples.sh"))
	cmd.Dir = ".."
	cmd.Env = append(installed.environ(), "PACKER="+installed.packer)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("scripts/validate-examples.sh: %v\n%s", err, out)
	}
}
