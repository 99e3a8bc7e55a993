package setup

func (g *Guest) runCommand(st *State, pass string, c Command) *PowerAction {
	return g.record(st, pass, c, Interpret(st, c.CommandLine))
}

// runMediaCommand runs a command that reads the media (usesMedia).
func (g *Guest) runMediaCommand(st *State, pass string, c Command, media []Medium) {
	g.record(st, pass, c, InterpretWithMedia(st, media, c.CommandLine))
}

func (g *Guest) record(st *State, pass string, c Command, out Outcome) *PowerAction {
	st.Commands = append(st.Commands, CommandRecord{Pass: pass, Order: c.Order, CommandLine: c.CommandLine, Outcome: out.Summary})
	desc := ""
	if c.Description != "" {
		desc = " (" + c.Description + ")"
	}
	g.Log.Printf("setup: "+pass, "command %d%s: %s -> %s", c.Order, desc, c.CommandLine, out.Summary)
	return out.Power
}
