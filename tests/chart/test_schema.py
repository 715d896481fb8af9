"""values.schema.json: draft-07, covers every value, requires the credentials Secret, refuses
typos and values the binary or cloudflared would refuse."""

import json
import re
import unittest

import helm_python as helm
import yaml

from chartlib import CHART, chart, render_values, values


def schema():
    return json.loads((CHART / "values.schema.json").read_text())


def resolve(root, node):
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        node = root
        for part in path:
            node = node[part]
    return node


def reserved_flag(arg):
    """`--name` of a flag argument (`-name`, `--name=value`), as the schema's error names it."""
    return "--" + arg.lstrip("-").split("=", 1)[0]


class Schema(unittest.TestCase):
    def assertRejected(self, vals, *words):
        with self.assertRaises(helm.HelmValuesError) as caught:
            chart().validate_schema(vals)
        for word in words:
            self.assertIn(word, str(caught.exception))
        # The real install path refuses them too, before any template runs.
        with self.assertRaises(helm.HelmValuesError):
            render_values(vals)

    def test_is_draft_07(self):
        self.assertEqual(schema()["$schema"], "http://json-schema.org/draft-07/schema#")

    def test_defaults_with_the_secret_are_accepted(self):
        chart().validate_schema(values())

    def test_a_missing_credentials_secret_is_rejected(self):
        # values.yaml's default: the empty string.
        self.assertRejected({}, "credentialsSecret")
        self.assertRejected({"tunnel": {"credentialsSecret": ""}}, "credentialsSecret")
        # Removed altogether (null deletes a default): `required`.
        self.assertRejected({"tunnel": {"credentialsSecret": None}}, "credentialsSecret")

    def test_typos_are_rejected(self):
        self.assertRejected(values({"replica": 3}), "replica")
        self.assertRejected(values({"reload": {"mod": "signal"}}), "mod")
        self.assertRejected(values({"tunnel": {"credentialSecret": "x"}}), "credentialSecret")

    def test_values_the_binary_would_refuse_are_rejected(self):
        for bad in [
            {"reload": {"mode": "restart"}},
            {"reload": {"readyTimeout": "soon"}},
            {"reload": {"stagger": "sometimes"}},
            {"reload": {"staggerMaxWait": "a while"}},
            {"logFormat": "xml"},
            {"grpcBackendTLS": "off"},
            {"gateways": ["no-namespace"]},
            {"controllerName": "no-domain-prefix"},
            {"cloudflared": {"gracePeriodSeconds": 600}},  # cloudflared allows 3 minutes
            {"replicas": 1.5},
            {"admin": {"port": 0}},
            {"gateway": {"listeners": []}},
            {"gateway": {"listeners": [{"name": "tcp", "protocol": "TCP", "port": 22}]}},
        ]:
            with self.subTest(bad=bad):
                self.assertRejected(values(bad))

    def test_cloudflared_flags_the_chart_sets_itself_are_rejected(self):
        # --config, --metrics and --pidfile are the chart's; a token makes the tunnel remotely
        # managed, which replaces the local ingress.
        for arg in ["--config", "--metrics", "--pidfile=/x", "--token", "--token-file", "-metrics"]:
            with self.subTest(arg=arg):
                # The error names the flag (not just "'not' failed").
                self.assertRejected(values({"cloudflared": {"extraArgs": ["--protocol", "http2", arg, "x"]}}),
                                    "/cloudflared/extraArgs/2", reserved_flag(arg))
        chart().validate_schema(values({"cloudflared": {"extraArgs": ["--protocol", "http2"]}}))

    def test_a_tunnel_token_in_the_environment_is_rejected(self):
        # cloudflared reads TUNNEL_TOKEN as --token (TUNNEL_TOKEN_FILE as --token-file): the
        # tunnel would become remotely managed and its dashboard ingress would replace the
        # generated config. In supervise mode the children inherit cloudflared-routes' own
        # environment, so extraEnv is closed to it as well as cloudflared.extraEnv.
        for name in ["TUNNEL_TOKEN", "TUNNEL_TOKEN_FILE"]:
            for where in ("cloudflared", None):
                override = {"extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"},
                                         {"name": name, "value": "x"}]}
                if where:
                    override = {where: override}
                with self.subTest(name=name, where=where):
                    self.assertRejected(values(override), name, "extraEnv/1/name", "remotely-managed")
        chart().validate_schema(values({"cloudflared": {"extraEnv": [{"name": "TUNNEL_LOGLEVEL", "value": "debug"}]}}))

    def test_run_flags_the_chart_sets_itself_are_rejected_in_extra_args(self):
        # Given twice, clap refuses to start; --manifests would stop the Kubernetes source.
        for arg in ["--reload", "--config-out=/x", "--gateway", "--admin-addr", "--manifests", "--stagger",
                    "--stagger-max-wait=1m", "--tunnel-id"]:
            with self.subTest(arg=arg):
                self.assertRejected(values({"extraArgs": [arg, "x"]}), "/extraArgs/0", reserved_flag(arg))
        chart().validate_schema(values({"extraArgs": ["--lease-duration", "30s"]}))

    def test_the_refusal_of_reserved_flags_names_every_one(self):
        # JSON schema has no error messages: each list's `then` is a `const` that no reserved
        # flag equals, so the error reads "value must be 'a flag other than …'". It must name
        # every flag its `if` pattern refuses.
        props = schema()["properties"]
        for where, items in (("extraArgs", props["extraArgs"]["items"]),
                             ("cloudflared.extraArgs", props["cloudflared"]["properties"]["extraArgs"]["items"])):
            with self.subTest(where=where):
                m = re.fullmatch(r"\^--\??\(([-a-z|]+)\)\(=\.\*\)\?\$", items["if"]["pattern"])
                self.assertIsNotNone(m, items["if"]["pattern"])
                message = items["then"]["const"]
                for name in m.group(1).split("|"):
                    self.assertRegex(message, rf"--{name}\b(?!-)", f"{where}: the error does not name --{name}")
                self.assertNotRegex(message, items["if"]["pattern"])

    def test_every_value_in_values_yaml_is_described(self):
        root = schema()
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        missing, untyped = [], []

        def walk(value, node, path):
            node = resolve(root, node)
            if not isinstance(value, dict) or "properties" not in node:
                return
            for key, child in value.items():
                where = ".".join(path + [key])
                if key not in node["properties"]:
                    missing.append(where)
                    continue
                described = resolve(root, node["properties"][key])
                if not any(k in described for k in ("type", "anyOf", "oneOf")):
                    untyped.append(where)
                walk(child, described, path + [key])

        walk(defaults, root, [])
        self.assertEqual(missing, [], "values without a schema")
        self.assertEqual(untyped, [], "values whose schema has no type")

    def test_every_described_object_refuses_unknown_keys(self):
        # So a typo never passes silently. (Pass-through Kubernetes objects such as resources
        # or affinity have no `properties`: the Kubernetes schemas check them once rendered.)
        root = schema()
        open_objects = []

        def walk(node, path):
            node = resolve(root, node)
            if "properties" in node:
                if node.get("additionalProperties") is not False:
                    open_objects.append(path or "(root)")
                for key, child in node["properties"].items():
                    walk(child, f"{path}.{key}")

        walk(root, "")
        self.assertEqual(open_objects, [])


if __name__ == "__main__":
    unittest.main()
