package libvirt

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// lossyDriver is the in-memory hypervisor behind a connection that can be
// lost (libvirtd restarted, the network to it broken) and made again.
type lossyDriver struct {
	*recordingDriver
	mu           sync.Mutex
	lost         bool
	reconnectErr error
	reconnects   int
}

var _ reconnector = (*lossyDriver)(nil)

func (d *lossyDriver) down() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost {
		return errors.New("libvirt: client socket is closed")
	}
	return nil
}

func (d *lossyDriver) lose() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lost = true
}

func (d *lossyDriver) Connected() bool { return d.down() == nil }

func (d *lossyDriver) Reconnect() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reconnects++
	if d.reconnectErr != nil {
		return d.reconnectErr
	}
	d.lost = false
	return nil
}

// DefineAndStart leaves the domain running (the stand-in installing).
func (d *lossyDriver) DefineAndStart(xml string) error {
	err := d.recordingDriver.DefineAndStart(xml)
	d.recordingDriver.mu.Lock()
	d.recordingDriver.domains["packer-win"] = golibvirt.DomainRunning
	d.recordingDriver.mu.Unlock()
	return err
}

func (d *lossyDriver) setState(st golibvirt.DomainState) {
	d.recordingDriver.mu.Lock()
	defer d.recordingDriver.mu.Unlock()
	d.recordingDriver.domains["packer-win"] = st
}

func (d *lossyDriver) DomainState(name string) (golibvirt.DomainState, error) {
	if err := d.down(); err != nil {
		return 0, err
	}
	d.recordingDriver.mu.Lock()
	defer d.recordingDriver.mu.Unlock()
	return d.recordingDriver.domains[name], nil
}
func (d *lossyDriver) Destroy(name string) error {
	if err := d.down(); err != nil {
		return err
	}
	return d.recordingDriver.Destroy(name)
}
func (d *lossyDriver) Undefine(name string) error {
	if err := d.down(); err != nil {
		return err
	}
	return d.recordingDriver.Undefine(name)
}
func (d *lossyDriver) DeleteVolume(pool, name string) error {
	if err := d.down(); err != nil {
		return err
	}
	return d.recordingDriver.DeleteVolume(pool, name)
}
func (d *lossyDriver) SendKeys(name string, codes []uint32) error {
	if err := d.down(); err != nil {
		return err
	}
	return d.recordingDriver.SendKeys(name, codes)
}

// runUntil runs the build and, once the domain runs, applies fault; it
// fails the test when the build outlives the fault by two minutes.
func runUntil(t *testing.T, b *Builder, drv *lossyDriver, fault func()) error {
	t.Helper()
	b.connect = func(*url.URL) (Driver, error) { return drv, nil }
	b.watchInterval = 10 * time.Millisecond
	b.config.BootWait = time.Hour
	go func() {
		for {
			// Running is set by lossyDriver.DefineAndStart last: a fault
			// applied before it would be overwritten.
			drv.recordingDriver.mu.Lock()
			started := drv.recordingDriver.domains["packer-win"] == golibvirt.DomainRunning
			drv.recordingDriver.mu.Unlock()
			if started {
				fault()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the build still runs two minutes after the fault")
		return nil
	}
}

// libvirtd goes away mid-build: the build fails at once saying so; its
// Cleanups connect once more and remove the domain and every volume.
func TestLibvirtdLostMidBuildReconnectsToClean(t *testing.T) {
	b, _, _ := prepared(t, map[string]interface{}{"communicator": "winrm", "winrm_username": "builder", "winrm_password": "Build-Pw-1234"})
	drv := &lossyDriver{recordingDriver: newRecordingDriver()}
	err := runUntil(t, b, drv, drv.lose)
	if err == nil || !strings.Contains(err.Error(), "the connection to libvirtd was lost") {
		t.Fatalf("err %v, want the lost connection", err)
	}
	if drv.reconnects != 1 {
		t.Errorf("%d reconnects, want 1", drv.reconnects)
	}
	if len(drv.volumes) != 0 || len(drv.domains) != 0 {
		t.Errorf("left on the hypervisor: volumes %v domains %v", drv.volumes, drv.domains)
	}
	if strings.Contains(err.Error(), "left on the hypervisor") {
		t.Errorf("err %v names leftovers although the cleanup reconnected", err)
	}
}

// libvirtd stays away: after one attempt to connect again, the error names
// the domain and each volume left, with the virsh command that removes it.
func TestLibvirtdLostForGoodNamesWhatIsLeft(t *testing.T) {
	b, _, _ := prepared(t, map[string]interface{}{"communicator": "winrm", "winrm_username": "builder", "winrm_password": "Build-Pw-1234"})
	drv := &lossyDriver{recordingDriver: newRecordingDriver(), reconnectErr: errors.New("dial unix /run/libvirt/libvirt-sock: connect: no such file or directory")}
	err := runUntil(t, b, drv, drv.lose)
	if err == nil {
		t.Fatal("the build succeeded without libvirtd")
	}
	if drv.reconnects != 1 {
		t.Errorf("%d reconnects, want exactly 1", drv.reconnects)
	}
	for _, want := range []string{
		"left on the hypervisor qemu:///system",
		"domain packer-win (libvirt: client socket is closed; remove it with: virsh destroy packer-win; virsh undefine --nvram --tpm packer-win)",
		"volume packer-win.qcow2 in pool default (libvirt: client socket is closed; remove it with: virsh vol-delete packer-win.qcow2 --pool default)",
		"virsh vol-delete packer-win-install.iso --pool default",
		"virsh vol-delete packer-win-answer.iso --pool default",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// The domain's QEMU dies (crash, or killed) while the build waits: the
// build fails at once naming it, and the domain and volumes are removed.
func TestDomainStoppingFailsTheBuildAtOnce(t *testing.T) {
	for _, tc := range []struct {
		state golibvirt.DomainState
		want  string
	}{
		{golibvirt.DomainShutoff, "domain packer-win shut off while the build still needed it"},
		{golibvirt.DomainCrashed, "domain packer-win crashed"},
	} {
		b, _, _ := prepared(t, map[string]interface{}{"communicator": "winrm", "winrm_username": "builder", "winrm_password": "Build-Pw-1234"})
		drv := &lossyDriver{recordingDriver: newRecordingDriver()}
		err := runUntil(t, b, drv, func() { drv.setState(tc.state) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
		if len(drv.volumes) != 0 || len(drv.domains) != 0 {
			t.Errorf("left on the hypervisor: volumes %v domains %v", drv.volumes, drv.domains)
		}
	}
}
