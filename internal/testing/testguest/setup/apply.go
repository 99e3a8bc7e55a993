package setup

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// partition writes the partition table and formats the partitions.
func (g *Guest) partition(disk BlockDevice, plan *Plan, st *State) error {
	dev := disk.Dev()
	// Wipe: clear the first and last MiB (old tables, boot code).
	zero := make([]byte, 1<<20)
	if err := WriteAt(dev, 0, zero); err != nil {
		return err
	}
	if err := WriteAt(dev, int64(disk.Sectors*sectorSize)-int64(len(zero)), zero); err != nil {
		return err
	}
	mbr := plan.MBR(binary.LittleEndian.Uint32(randomBytes(4)))
	if err := WriteAt(dev, 0, mbr); err != nil {
		return err
	}
	if plan.Style == StyleGPT {
		primary, backup := plan.GPT(func() [16]byte {
			var u [16]byte
			copy(u[:], randomBytes(16))
			u[6] = u[6]&0x0f | 0x40
			u[8] = u[8]&0x3f | 0x80
			return u
		})
		if err := WriteAt(dev, sectorSize, primary); err != nil {
			return err
		}
		if err := WriteAt(dev, int64(disk.Sectors*sectorSize)-int64(len(backup)), backup); err != nil {
			return err
		}
	}
	if err := RereadPartitions(dev, len(plan.Partitions)); err != nil {
		return err
	}
	for _, p := range plan.Partitions {
		typeID := p.GPTType
		if plan.Style == StyleMBR {
			typeID = fmt.Sprintf("0x%02X", p.MBRType)
		}
		desc := fmt.Sprintf("partition %d: %s, %d MB, type %s", p.Number, p.Type, p.SizeMB(), typeID)
		if p.Active {
			desc += ", active"
		}
		if p.Format != "" {
			label := p.Label
			if label == "" {
				label = p.Type
			}
			if err := g.FormatFAT(PartitionDev(dev, p.Number), label); err != nil {
				return err
			}
			desc += fmt.Sprintf(", formatted %s (stand-in file system: FAT32), label %q", p.Format, p.Label)
		}
		if p.Letter != "" {
			desc += ", " + p.Letter + ":"
		}
		g.pe("%s", desc)
		st.Partitions = append(st.Partitions, PartitionRecord{Number: p.Number, Type: p.Type, SizeMB: p.SizeMB(), Format: p.Format, Label: p.Label, TypeID: typeID})
	}
	g.pe("disk %s: %s partition table written", disk.Name, plan.Style)
	return nil
}

// copyFromMedium copies a file of the medium to dst and syncs it.
func copyFromMedium(dst string, m *Medium, rel string) error {
	in, err := m.Open(rel)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return syncAndClose(f)
}

// applyImage "applies" the image: the stand-in's kernel and initramfs, the
// answer file in Panther, and the boot loader for the firmware.
func (g *Guest) applyImage(src *Medium, ans *Answer, plan *Plan, disk BlockDevice, st *State) error {
	for _, c := range [][2]string{{KernelPath, isoKernel}, {InitrdPath, isoInitrd}} {
		if err := copyFromMedium(filepath.Join(windowsRoot, c[0]), src, c[1]); err != nil {
			return fmt.Errorf("applying the image: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(windowsRoot, System32Path), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(windowsRoot, filepath.Dir(PantherPath)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(windowsRoot, PantherPath), ans.Raw, 0o644); err != nil {
		return err
	}
	g.pe("image applied to partition %d", plan.Windows+1)

	switch plan.Style {
	case StyleMBR:
		boot, err := src.ReadFile(isoBootImg)
		if err != nil {
			return err
		}
		core, err := src.ReadFile(isoCoreImg)
		if err != nil {
			return err
		}
		if len(boot) < 440 || len(core) > (alignment-1)*sectorSize {
			return fmt.Errorf("boot loader images have unexpected sizes (%d, %d bytes)", len(boot), len(core))
		}
		if err := WriteAt(disk.Dev(), 0, boot[:440]); err != nil {
			return err
		}
		if err := WriteAt(disk.Dev(), sectorSize, core); err != nil {
			return err
		}
		g.pe("boot code written to the master boot record of %s", disk.Name)
	case StyleGPT:
		espDev := PartitionDev(disk.Dev(), plan.ESP+1)
		if err := Mount(espDev, espRoot, "vfat", false, "iocharset=utf8,shortname=mixed"); err != nil {
			return err
		}
		// The boot chain of signed media, so the disk boots under Secure
		// Boot: shim (signed by Microsoft) at the removable-media path and
		// as Windows Boot Manager, the signed GRUB beside each, its config.
		files := [][2]string{
			{bootX64Path, isoShim},
			{path.Join(path.Dir(bootX64Path), grubName), isoGrub},
			{bootmgfwPath, isoShim},
			{path.Join(path.Dir(bootmgfwPath), grubName), isoGrub},
			{grubCfgPath, isoGrubCfg},
		}
		for _, f := range files {
			if err := copyFromMedium(filepath.Join(espRoot, f[0]), src, f[1]); err != nil {
				_ = Unmount(espRoot)
				return err
			}
		}
		if err := Unmount(espRoot); err != nil {
			return err
		}
		g.pe("boot files written to the EFI system partition (\\EFI\\BOOT\\BOOTX64.EFI)")
	}
	return nil
}
