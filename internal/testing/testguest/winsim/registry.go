package winsim

import (
	"fmt"
	"sort"
	"strings"
)

// Registry value types.
const (
	RegSZ       = "REG_SZ"
	RegExpandSZ = "REG_EXPAND_SZ"
	RegDWORD    = "REG_DWORD"
	RegQWORD    = "REG_QWORD"
	RegMultiSZ  = "REG_MULTI_SZ"
	RegBinary   = "REG_BINARY"
)

// Registry hive names as stored.
const (
	hklm = "HKEY_LOCAL_MACHINE"
	hku  = "HKEY_USERS"
)

type regKey struct {
	Name   string               `json:"name"`
	Values map[string]*RegValue `json:"values,omitempty"`
	Keys   map[string]*regKey   `json:"keys,omitempty"`
}

// RegValue is a registry value.
type RegValue struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	String  string   `json:"string,omitempty"`
	Strings []string `json:"strings,omitempty"`
	Number  uint64   `json:"number,omitempty"`
	Binary  []byte   `json:"binary,omitempty"`
}

// ErrUnsupportedType is returned when a value is read as the wrong type
// (ERROR_UNSUPPORTED_TYPE, 1630).
var ErrUnsupportedType = fmt.Errorf("registry value has another type (ERROR_UNSUPPORTED_TYPE)")

// Registry is the simulated registry as one user sees it (HKCU is
// HKEY_USERS\<user>). Keys and value names are case-insensitive and
// case-preserving. Key paths take the hive first, in any of the forms
// Windows tools use: `HKLM\SOFTWARE\...`, `HKEY_LOCAL_MACHINE\...`,
// PowerShell's `HKLM:\...` and `HKLM:SOFTWARE\...`, and
// `Registry::HKEY_LOCAL_MACHINE\...`. Every change is saved to the state
// directory. It implements agent.Registry.
type Registry struct {
	m    *Machine
	user string
}

// parseRegPath splits a registry path into its stored hive and key names.
func parseRegPath(s, user string) (hive string, parts []string, err error) {
	orig := s
	s = strings.ReplaceAll(s, "/", `\`)
	if i := strings.Index(strings.ToLower(s), "registry::"); i >= 0 {
		s = s[i+len("registry::"):]
	}
	var head, rest string
	if i := strings.IndexAny(s, `:\`); i >= 0 {
		head, rest = s[:i], s[i:]
		rest = strings.TrimPrefix(rest, ":")
	} else {
		head = s
	}
	var prefix []string
	switch strings.ToUpper(head) {
	case "HKLM", hklm:
		hive = hklm
	case "HKU", hku:
		hive = hku
	case "HKCU", "HKEY_CURRENT_USER":
		hive, prefix = hku, []string{user}
	case "HKCR", "HKEY_CLASSES_ROOT":
		hive, prefix = hklm, []string{"SOFTWARE", "Classes"}
	default:
		return "", nil, fmt.Errorf("registry path %q: unknown hive %q", orig, head)
	}
	parts = prefix
	for _, c := range strings.Split(rest, `\`) {
		if c != "" {
			parts = append(parts, c)
		}
	}
	return hive, parts, nil
}

// key finds a key; create makes the missing ones. Call with m.mu held.
func (m *Machine) regKeyLocked(hive string, parts []string, create bool) *regKey {
	k := m.st.Registry[hive]
	if k == nil {
		if !create {
			return nil
		}
		k = &regKey{Name: hive}
		m.st.Registry[hive] = k
	}
	for _, p := range parts {
		sub := k.Keys[strings.ToLower(p)]
		if sub == nil {
			if !create {
				return nil
			}
			if k.Keys == nil {
				k.Keys = map[string]*regKey{}
			}
			sub = &regKey{Name: p}
			k.Keys[strings.ToLower(p)] = sub
		}
		k = sub
	}
	return k
}

func (r *Registry) lookup(key string) (*regKey, error) {
	hive, parts, err := parseRegPath(key, r.user)
	if err != nil {
		return nil, err
	}
	return r.m.regKeyLocked(hive, parts, false), nil
}

// KeyExists reports whether the key exists.
func (r *Registry) KeyExists(key string) (bool, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	k, err := r.lookup(key)
	return k != nil, err
}

// SubKeys lists the names of the key's direct subkeys, sorted.
func (r *Registry) SubKeys(key string) ([]string, error) {
	return r.names(key, func(k *regKey) (names []string) {
		for _, s := range k.Keys {
			names = append(names, s.Name)
		}
		return names
	})
}

// ValueNames lists the names of the key's values, sorted.
func (r *Registry) ValueNames(key string) ([]string, error) {
	return r.names(key, func(k *regKey) (names []string) {
		for _, v := range k.Values {
			names = append(names, v.Name)
		}
		return names
	})
}

// names lists names of an existing key, sorted as regedit shows them.
func (r *Registry) names(key string, list func(*regKey) []string) ([]string, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	k, err := r.lookup(key)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, fmt.Errorf("registry key %s: %w", key, ErrorFileNotFound)
	}
	names := list(k)
	sortFold(names)
	return names, nil
}

// Value returns a copy of a value of any type.
func (r *Registry) Value(key, name string) (RegValue, bool, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	k, err := r.lookup(key)
	if err != nil || k == nil {
		return RegValue{}, false, err
	}
	v := k.Values[strings.ToLower(name)]
	if v == nil {
		return RegValue{}, false, nil
	}
	c := *v
	c.Strings = append([]string(nil), v.Strings...)
	c.Binary = append([]byte(nil), v.Binary...)
	return c, true, nil
}

// String returns a REG_SZ or REG_EXPAND_SZ value.
func (r *Registry) String(key, name string) (string, bool, error) {
	v, ok, err := r.Value(key, name)
	if err != nil || !ok {
		return "", false, err
	}
	if v.Type != RegSZ && v.Type != RegExpandSZ {
		return "", false, fmt.Errorf("%s\\%s is %s: %w", key, name, v.Type, ErrUnsupportedType)
	}
	return v.String, true, nil
}

// DWORD returns a REG_DWORD value.
func (r *Registry) DWORD(key, name string) (uint32, bool, error) {
	v, ok, err := r.Value(key, name)
	if err != nil || !ok {
		return 0, false, err
	}
	if v.Type != RegDWORD {
		return 0, false, fmt.Errorf("%s\\%s is %s: %w", key, name, v.Type, ErrUnsupportedType)
	}
	return uint32(v.Number), true, nil
}

// MultiString returns a REG_MULTI_SZ value.
func (r *Registry) MultiString(key, name string) ([]string, bool, error) {
	v, ok, err := r.Value(key, name)
	if err != nil || !ok {
		return nil, false, err
	}
	if v.Type != RegMultiSZ {
		return nil, false, fmt.Errorf("%s\\%s is %s: %w", key, name, v.Type, ErrUnsupportedType)
	}
	return v.Strings, true, nil
}

// SetValue creates or replaces a value, creating the key as needed.
func (r *Registry) SetValue(key string, v RegValue) error {
	hive, parts, err := parseRegPath(key, r.user)
	if err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	k := r.m.regKeyLocked(hive, parts, true)
	if k.Values == nil {
		k.Values = map[string]*RegValue{}
	}
	if old := k.Values[strings.ToLower(v.Name)]; old != nil {
		v.Name = old.Name
	}
	k.Values[strings.ToLower(v.Name)] = &v
	return r.m.saveLocked()
}

func (r *Registry) SetString(key, name, value string) error {
	return r.SetValue(key, RegValue{Name: name, Type: RegSZ, String: value})
}

func (r *Registry) SetExpandString(key, name, value string) error {
	return r.SetValue(key, RegValue{Name: name, Type: RegExpandSZ, String: value})
}

func (r *Registry) SetDWORD(key, name string, value uint32) error {
	return r.SetValue(key, RegValue{Name: name, Type: RegDWORD, Number: uint64(value)})
}

func (r *Registry) SetMultiString(key, name string, value []string) error {
	return r.SetValue(key, RegValue{Name: name, Type: RegMultiSZ, Strings: append([]string(nil), value...)})
}

// DeleteValue removes a value; no error when it is absent.
func (r *Registry) DeleteValue(key, name string) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	k, err := r.lookup(key)
	if err != nil || k == nil {
		return err
	}
	if _, ok := k.Values[strings.ToLower(name)]; !ok {
		return nil
	}
	delete(k.Values, strings.ToLower(name))
	return r.m.saveLocked()
}

// CreateKey creates a key and its missing parents.
func (r *Registry) CreateKey(key string) error {
	hive, parts, err := parseRegPath(key, r.user)
	if err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.regKeyLocked(hive, parts, true)
	return r.m.saveLocked()
}

// DeleteKey removes a key with its subkeys and values (RegDeleteTree);
// no error when it is absent.
func (r *Registry) DeleteKey(key string) error {
	hive, parts, err := parseRegPath(key, r.user)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("registry: cannot delete hive %s", hive)
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.m.deleteKeyLocked(hive, parts) {
		return r.m.saveLocked()
	}
	return nil
}

func (m *Machine) deleteKeyLocked(hive string, parts []string) bool {
	parent := m.regKeyLocked(hive, parts[:len(parts)-1], false)
	if parent == nil {
		return false
	}
	name := strings.ToLower(parts[len(parts)-1])
	if _, ok := parent.Keys[name]; !ok {
		return false
	}
	delete(parent.Keys, name)
	return true
}

// setValueLocked is SetValue for the machine's own bookkeeping.
func (m *Machine) setValueLocked(key string, v RegValue) {
	hive, parts, err := parseRegPath(key, "")
	if err != nil {
		panic(err)
	}
	k := m.regKeyLocked(hive, parts, true)
	if k.Values == nil {
		k.Values = map[string]*RegValue{}
	}
	k.Values[strings.ToLower(v.Name)] = &v
}

func (m *Machine) keyExistsLocked(key string) bool {
	hive, parts, err := parseRegPath(key, "")
	if err != nil {
		panic(err)
	}
	return m.regKeyLocked(hive, parts, false) != nil
}

func sortFold(s []string) {
	sort.Slice(s, func(i, j int) bool { return strings.ToUpper(s[i]) < strings.ToUpper(s[j]) })
}
