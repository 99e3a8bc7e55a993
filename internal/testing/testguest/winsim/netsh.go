package winsim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RunNetsh is `netsh advfirewall firewall` add rule, delete rule and show
// rule by name, for inbound TCP rules on one local port, with netsh's
// messages: "Ok." (exit 0) after add, "Deleted N rule(s)." and "Ok."
// (exit 0) after delete, and "No rules match the specified criteria."
// (exit 1) when delete or show finds no rule of that name.
func (c *WinRMConfig) RunNetsh(args []string, stdout io.Writer) (uint32, error) {
	if len(args) < 4 || !strings.EqualFold(args[0], "advfirewall") || !strings.EqualFold(args[1], "firewall") || !strings.EqualFold(args[3], "rule") {
		return 0, notModelled("netsh %s", strings.Join(args, " "))
	}
	kv := map[string]string{}
	var order []string
	for _, a := range args[4:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return 0, notModelled("netsh advfirewall firewall %s argument %q", args[2], a)
		}
		k = strings.ToLower(k)
		kv[k] = strings.Trim(v, `"`)
		order = append(order, k)
	}
	name, ok := kv["name"]
	if !ok || name == "" {
		return 0, notModelled("netsh advfirewall firewall %s without name=", args[2])
	}
	switch strings.ToLower(args[2]) {
	case "add":
		return c.netshAddRule(name, kv, order, stdout)
	case "delete":
		return c.netshDeleteRule(name, kv, stdout)
	case "show":
		return c.netshShowRule(name, kv, stdout)
	}
	return 0, notModelled("netsh advfirewall firewall %s", args[2])
}

// netshNoMatch is delete's and show's answer when no rule has the name.
func netshNoMatch(stdout io.Writer) (uint32, error) {
	fmt.Fprint(stdout, "\r\nNo rules match the specified criteria.\r\n\r\n")
	return 1, nil
}

// netshAddRule is `add rule`; order is the order the arguments came in.
func (c *WinRMConfig) netshAddRule(name string, kv map[string]string, order []string, stdout io.Writer) (uint32, error) {
	r := FirewallRule{Name: name, Enable: true}
	for _, k := range order {
		v := kv[k]
		switch k {
		case "name":
		case "dir":
			if !strings.EqualFold(v, "in") {
				return 0, notModelled("netsh rule dir=%s", v)
			}
		case "action":
			if !strings.EqualFold(v, "allow") && !strings.EqualFold(v, "block") {
				return 0, notModelled("netsh rule action=%s", v)
			}
			r.Allow = strings.EqualFold(v, "allow")
		case "protocol":
			if !strings.EqualFold(v, "tcp") {
				return 0, notModelled("netsh rule protocol=%s", v)
			}
		case "localport":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return 0, notModelled("netsh rule localport=%s (one port is)", v)
			}
			r.Port = n
		case "profile":
			for _, p := range strings.Split(strings.ToLower(v), ",") {
				switch p {
				case "any":
					r.Profiles = []string{"domain", "private", "public"}
				case "domain", "private", "public":
					r.Profiles = append(r.Profiles, p)
				default:
					return 0, notModelled("netsh rule profile=%s", v)
				}
			}
		case "enable":
			r.Enable = strings.EqualFold(v, "yes")
		default:
			return 0, notModelled("netsh rule %s=", k)
		}
	}
	if r.Port == 0 || kv["protocol"] == "" || kv["action"] == "" {
		return 0, notModelled("netsh add rule without protocol=TCP, localport= and action=")
	}
	if r.Profiles == nil {
		r.Profiles = []string{"domain", "private", "public"} // profile=any is netsh's default
	}
	c.FirewallRules = append(c.FirewallRules, r)
	fmt.Fprint(stdout, "Ok.\r\n\r\n")
	return 0, nil
}

// netshDeleteRule is `delete rule name=`: every rule of that name goes.
func (c *WinRMConfig) netshDeleteRule(name string, kv map[string]string, stdout io.Writer) (uint32, error) {
	if len(kv) != 1 {
		return 0, notModelled("netsh delete rule with criteria besides name=")
	}
	n := 0
	kept := c.FirewallRules[:0]
	for _, r := range c.FirewallRules {
		if strings.EqualFold(r.Name, name) {
			n++
			continue
		}
		kept = append(kept, r)
	}
	c.FirewallRules = kept
	if n == 0 {
		return netshNoMatch(stdout)
	}
	fmt.Fprintf(stdout, "\r\nDeleted %d rule(s).\r\nOk.\r\n\r\n", n)
	return 0, nil
}

// netshShowRule is `show rule name=`, in netsh's layout.
func (c *WinRMConfig) netshShowRule(name string, kv map[string]string, stdout io.Writer) (uint32, error) {
	if len(kv) != 1 {
		return 0, notModelled("netsh show rule with criteria besides name=")
	}
	rules := c.RulesNamed(name)
	if len(rules) == 0 {
		return netshNoMatch(stdout)
	}
	for _, r := range rules {
		yes := func(b bool) string {
			if b {
				return "Yes"
			}
			return "No"
		}
		action := "Block"
		if r.Allow {
			action = "Allow"
		}
		var profiles []string
		for _, p := range r.Profiles {
			profiles = append(profiles, strings.ToUpper(p[:1])+p[1:])
		}
		fmt.Fprintf(stdout, "\r\nRule Name:                            %s\r\n%s\r\nEnabled:                              %s\r\nDirection:                            In\r\n"+
			"Profiles:                             %s\r\nLocalPort:                            %d\r\nProtocol:                             TCP\r\nAction:                               %s\r\n",
			r.Name, strings.Repeat("-", 70), yes(r.Enable), strings.Join(profiles, ","), r.Port, action)
	}
	fmt.Fprint(stdout, "Ok.\r\n\r\n")
	return 0, nil
}
