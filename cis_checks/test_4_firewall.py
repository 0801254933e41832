"""4.3 Host firewall (nftables): the ruleset loaded now, and the one nftables.service loads at boot.

The company ruleset (written by hardening-cis.sh from the params of 4.3.4-4.3.8) is judged on
`nft -j list ruleset`; rules are compared in nft's own words, e.g. `iif lo accept`.
"""

import json

from pipeline.checks import facts as fact_sections
from pipeline.checks.authoring import control, require

# What the next boot will load: the file of nftables.service's ExecStart, loaded into a throwaway
# network namespace so the running firewall is not touched.
fact_sections.register(
    "nft_boot",
    "f=$(systemctl show -P ExecStart nftables.service 2>/dev/null | grep -o -- '-f [^ ;]*' | head -n 1 | cut -c4-); "
    "echo \"file ${f:-none}\"; [ -z \"$f\" ] || unshare -n sh -c 'nft -f \"$1\" >/dev/null && nft -j list ruleset' "
    "sh \"$f\" 2>&1")

BARE_META = {"iif", "oif", "iifname", "oifname"}     # meta keys nft writes without the word `meta`


def _operand(expr):
    if "meta" in expr:
        key = expr["meta"]["key"]
        return key if key in BARE_META else f"meta {key}"
    if "payload" in expr:
        return f"{expr['payload']['protocol']} {expr['payload']['field']}"
    if "ct" in expr:
        return f"ct {expr['ct']['key']}"
    return json.dumps(expr, sort_keys=True)


def _value(value):
    if isinstance(value, list):
        return ",".join(_value(v) for v in value)
    if isinstance(value, dict):
        if "set" in value:
            return "{ " + ", ".join(_value(v) for v in value["set"]) + " }"
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return "-".join(_value(v) for v in value["range"])
        return _operand(value)
    return str(value)


def render(expr):
    """One rule of `nft -j` in nft's words, without counters: `tcp dport { 80, 443 } accept`."""
    words = []
    for statement in expr:
        (name, arg), = statement.items()
        if name == "match":
            op = "" if arg["op"] in ("==", "in") else f" {arg['op']}"
            words.append(f"{_operand(arg['left'])}{op} {_value(arg['right'])}")
        elif name in ("jump", "goto"):
            words.append(f"{name} {arg['target']}")
        elif name != "counter":
            words.append(name)
    return " ".join(words)


def normal(rule):
    return " ".join(rule.replace('"', "").split())


class Ruleset:
    """Tables, base chains and rendered rules of one `nft -j list ruleset` output."""

    def __init__(self, text):
        try:
            items = json.loads(text)["nftables"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(" ".join(text.split())[:200] or "no output") from None
        self.tables = {f"{i['table']['family']} {i['table']['name']}" for i in items if "table" in i}
        self.chains = {}                    # "family table chain" -> chain object
        self.rules = {}                     # "family table chain" -> [rendered rule]
        for item in items:
            if "chain" in item:
                c = item["chain"]
                self.chains[f"{c['family']} {c['table']} {c['name']}"] = c
            elif "rule" in item:
                r = item["rule"]
                self.rules.setdefault(f"{r['family']} {r['table']} {r['chain']}", []).append(render(r["expr"]))

    def base_chains(self, hook):
        return {name: c for name, c in self.chains.items() if c.get("hook") == hook and c.get("type") == "filter"}


def table_findings(rs, table):
    if table in rs.tables:
        return []
    return [f"table {table} is not loaded (tables: {', '.join(sorted(rs.tables)) or 'none'})"]


def hook_findings(rs, hooks):
    return [f"no filter base chain is hooked at {hook}" for hook in hooks if not rs.base_chains(hook)]


def rule_findings(rs, rules_by_hook):
    findings = []
    for hook, rules in rules_by_hook.items():
        present = {normal(r) for name in rs.base_chains(hook) for r in rs.rules.get(name, [])}
        findings += [f"no {hook} base chain has the rule `{rule}`" for rule in rules if normal(rule) not in present]
    return findings


def policy_findings(rs, policy_by_hook):
    findings = []
    for hook, policy in policy_by_hook.items():
        chains = rs.base_chains(hook)
        if not chains:
            findings.append(f"no {hook} base chain, so nothing applies the {policy} policy")
        findings += [f"{name} has policy {c.get('policy', 'accept')}, expected {policy}"
                     for name, c in sorted(chains.items()) if c.get("policy", "accept") != policy]
    return findings


def loaded(facts):
    try:
        return Ruleset(facts.raw("nft")), []
    except ValueError as exc:
        return None, [f"nft -j list ruleset gave no ruleset: {exc}"]


@control("4.3.4", violate="nft_rename_table adhoc", needs=["nft"], services=["firewall"])
def test_nftables_table_exists(facts, control_values):
    """The company table holds the firewall; any other table alone is not it."""
    rs, findings = loaded(facts)
    require(findings or table_findings(rs, control_values["params"]["table"]))


@control("4.3.5", violate="nft delete chain $(nft_chain_at forward)", needs=["nft"], services=["firewall"])
def test_nftables_base_chains_exist(facts, control_values):
    """A filter base chain at each hook, or packets at that hook are never filtered."""
    rs, findings = loaded(facts)
    require(findings or hook_findings(rs, control_values["params"]["hooks"]))


@control("4.3.6", violate="nft_delete_rule input 'iif \"lo\" accept'", needs=["nft"], services=["firewall"])
def test_nftables_loopback_traffic(facts, control_values):
    """Loopback is accepted on lo and spoofed loopback sources from anywhere else are dropped."""
    rs, findings = loaded(facts)
    require(findings or rule_findings(rs, control_values["params"]))


@control("4.3.8", violate="nft chain $(nft_chain_at input) '{ policy accept; }'", needs=["nft"],
         services=["firewall"])
def test_nftables_default_deny(facts, control_values):
    """Every input, forward and output base chain drops what no rule accepted."""
    rs, findings = loaded(facts)
    require(findings or policy_findings(rs, control_values["params"]))


@control("4.3.10", violate="sed -i 's/policy drop;/policy accept;/' /etc/nftables.conf", needs=["nft_boot"],
         services=["firewall"])
def test_nftables_rules_permanent(facts, baseline):
    """The ruleset the next boot loads meets 4.3.4, 4.3.5, 4.3.6 and 4.3.8 as the running one must."""
    first, _, text = facts.raw("nft_boot").partition("\n")
    path = first.removeprefix("file ").strip()
    if path == "none":
        require(["nftables.service loads no ruleset file (no `nft -f FILE` in its ExecStart)"])
    try:
        rs = Ruleset(text)
    except ValueError as exc:
        require([f"{path} does not load: {exc}"])
    p = {cis_id: baseline.values(cis_id)["params"] for cis_id in ("4.3.4", "4.3.5", "4.3.6", "4.3.8")}
    findings = (table_findings(rs, p["4.3.4"]["table"]) + hook_findings(rs, p["4.3.5"]["hooks"])
                + rule_findings(rs, p["4.3.6"]) + policy_findings(rs, p["4.3.8"]))
    require([f"at boot ({path}): {f}" for f in findings])
