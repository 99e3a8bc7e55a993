package qemuvm

import (
	"context"
	"path/filepath"
	"sync"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// DriverMock is a Driver for step tests: it records calls and returns the
// configured errors and results without touching the host.
type DriverMock struct {
	mu sync.Mutex

	StartVMArgs   []QemuArg
	StartVMCalled bool
	StartVMErr    error

	Status         string // QueryStatus result, "running" when empty
	QueryStatusErr error
	// VNC and VNCErr are what VNCAddress returns.
	VNC    string
	VNCErr error

	PowerdownCalled bool
	PowerdownErr    error

	SentKeys    [][]string
	SendKeysErr error

	// WaitVMFunc, when set, decides what WaitVM returns; otherwise WaitVM
	// returns WaitVMErr at once.
	WaitVMFunc  func(ctx context.Context) error
	WaitVMErr   error
	StopVMCalls int

	TPMStateDir  string
	StartTPMErr  error
	StopTPMCalls int

	CreateDiskPath   string
	CreateDiskSizeMB uint64
	CreateDiskErr    error

	ConvertSrc, ConvertDst string
	ConvertErr             error

	OverlayPath, OverlayBacking string
	OverlayErr                  error
}

var _ Driver = (*DriverMock)(nil)

func (d *DriverMock) StartVM(args []QemuArg) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.StartVMCalled, d.StartVMArgs = true, args
	return d.StartVMErr
}

func (d *DriverMock) QueryStatus(context.Context) (string, error) {
	if d.Status == "" {
		return "running", d.QueryStatusErr
	}
	return d.Status, d.QueryStatusErr
}

func (d *DriverMock) VNCAddress(context.Context) (string, error) {
	return d.VNC, d.VNCErr
}

func (d *DriverMock) SystemPowerdown(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.PowerdownCalled = true
	return d.PowerdownErr
}

func (d *DriverMock) SendKeys(_ context.Context, qcodes ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.SentKeys = append(d.SentKeys, qcodes)
	return d.SendKeysErr
}

func (d *DriverMock) WaitVM(ctx context.Context) error {
	if d.WaitVMFunc != nil {
		return d.WaitVMFunc(ctx)
	}
	return d.WaitVMErr
}

func (d *DriverMock) StopVM() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.StopVMCalls++
	return nil
}

func (d *DriverMock) StartTPM(stateDir string) (string, error) {
	d.TPMStateDir = stateDir
	return filepath.Join(stateDir, "swtpm.sock"), d.StartTPMErr
}

func (d *DriverMock) StopTPM() error {
	d.StopTPMCalls++
	return nil
}

func (d *DriverMock) CreateDisk(path string, sizeMB uint64) error {
	d.CreateDiskPath, d.CreateDiskSizeMB = path, sizeMB
	return d.CreateDiskErr
}

func (d *DriverMock) ConvertDisk(src, dst string) error {
	d.ConvertSrc, d.ConvertDst = src, dst
	return d.ConvertErr
}

var _ OverlayDriver = (*DriverMock)(nil)

func (d *DriverMock) CreateOverlay(path, backing string) error {
	d.OverlayPath, d.OverlayBacking = path, backing
	return d.OverlayErr
}

// MockState is the state bag of a step test: ui, and a new DriverMock as
// the Driver.
func MockState(ui packersdk.Ui) (*multistep.BasicStateBag, *DriverMock) {
	state := new(multistep.BasicStateBag)
	state.Put("ui", ui)
	d := new(DriverMock)
	state.Put(StateDriver, Driver(d))
	return state, d
}
