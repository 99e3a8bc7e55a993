"""Runs commands through pywinrm, the WinRM client under Ansible, and prints
what came back as JSON.

Usage: pywinrm_run.py ENDPOINT USER PASSWORD TRANSPORT ENCRYPTION KIND:COMMAND...
KIND is "cmd" (Session.run_cmd, the command line split at spaces) or "ps"
(Session.run_ps, PowerShell through -encodedcommand).
"""
import json
import sys

import winrm


def main():
    endpoint, user, password, transport, encryption = sys.argv[1:6]
    session = winrm.Session(endpoint, auth=(user, password), transport=transport,
                            message_encryption=encryption)
    results = []
    for spec in sys.argv[6:]:
        kind, _, command = spec.partition(":")
        if kind == "cmd":
            words = command.split(" ")
            r = session.run_cmd(words[0], words[1:])
        elif kind == "ps":
            r = session.run_ps(command)
        else:
            raise SystemExit("unknown kind %r" % kind)
        results.append({
            "status_code": r.status_code,
            "std_out": r.std_out.decode("utf-8", "replace"),
            "std_err": r.std_err.decode("utf-8", "replace"),
        })
    json.dump({"encrypted": session.protocol.transport.encryption is not None,
               "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
