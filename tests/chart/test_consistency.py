"""The chart agrees with the rest of the repository: the image the Dockerfile builds, the crate's
version, and the flags the binary accepts."""

import os
import re
import subprocess
import tempfile
import unittest

from chartlib import (ROOT, SCENARIOS, cargo_version, chart, container, dockerfile_text,
                      pod_spec, render, routes_container, split_argv)


def dockerfile_arg(name):
    m = re.search(rf"^ARG {name}=(\S+)$", dockerfile_text(), re.M)
    assert m, f"no ARG {name}=… in the Dockerfile"
    return m.group(1)


def final_stage_copies():
    """`COPY --from=STAGE SRC DEST` of the Dockerfile's last stage: {DEST: (STAGE, SRC)}."""
    last = dockerfile_text().rsplit("\nFROM ", 1)[1]
    return {dest: (stage, src) for stage, src, dest in
            re.findall(r"^COPY --from=(\S+) (\S+) (\S+)$", last, re.M)}


def routes_binary():
    path = os.environ.get("CLOUDFLARED_ROUTES_BIN") or str(ROOT / "target/debug/cloudflared-routes")
    return path if os.access(path, os.X_OK) else None


class Consistency(unittest.TestCase):
    def test_app_version_is_the_crates_version(self):
        self.assertEqual(chart().metadata["appVersion"], cargo_version())

    def test_signal_and_supervise_run_the_same_cloudflared_version(self):
        # signal: the official image at cloudflared.image.tag; supervise: the binary the
        # Dockerfile copied from the official image at CLOUDFLARED_VERSION.
        self.assertEqual(chart().values["cloudflared"]["image"]["tag"], dockerfile_arg("CLOUDFLARED_VERSION"))
        self.assertEqual(chart().values["cloudflared"]["image"]["repository"], "cloudflare/cloudflared")

    def test_binary_paths_are_where_the_dockerfile_puts_them(self):
        copies = final_stage_copies()
        # supervise: the child argv names the cloudflared of our image.
        _, child = split_argv(routes_container(pod_spec(render("supervise")))["args"])
        self.assertIn(child[0], copies)
        self.assertEqual(copies[child[0]][1], "/usr/local/bin/cloudflared")
        # signal: the startup probe runs our binary; the official image has cloudflared at the
        # path the chart's command names (the same path our image copies it from).
        spec = pod_spec(render("signal"))
        probe = routes_container(spec)["startupProbe"]["exec"]["command"]
        self.assertIn(probe[0], copies)
        self.assertEqual(container(spec, "cloudflared")["command"][0], copies[child[0]][1])
        # The image's entrypoint is the binary the probe runs, so `args` start with `run`.
        self.assertIn(f'ENTRYPOINT ["{probe[0]}"]', dockerfile_text())

    def test_every_flag_the_chart_passes_exists(self):
        binary = routes_binary()
        if binary is None:
            self.skipTest("no cloudflared-routes binary (run `cargo build` or set CLOUDFLARED_ROUTES_BIN)")
        help_text = subprocess.run([binary, "run", "--help"], capture_output=True, text=True,
                                   check=True).stdout
        known = set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))
        for name in SCENARIOS:
            args, _ = split_argv(routes_container(pod_spec(render(name)))["args"])
            with self.subTest(scenario=name):
                self.assertEqual(args[0], "run")
                used = {a for a in args if a.startswith("--")}
                self.assertEqual(used - known, set(), f"flags unknown to `cloudflared-routes run`: {args}")
                for choice in ("--reload", "--log-format", "--grpc-backend-tls"):
                    value = args[args.index(choice) + 1]
                    self.assertRegex(help_text, rf"(?m)^\s+- {value}:|possible values: .*\b{value}\b")

    def test_the_startup_probe_command_works(self):
        # `cloudflared-routes validate FILE` is the signal-mode startup probe: it must fail
        # while the file is missing and pass once a valid config is there.
        binary = routes_binary()
        if binary is None:
            self.skipTest("no cloudflared-routes binary (run `cargo build` or set CLOUDFLARED_ROUTES_BIN)")
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "config.yml")
            missing = subprocess.run([binary, "validate", config], capture_output=True)
            self.assertNotEqual(missing.returncode, 0)
            with open(config, "w") as f:
                f.write("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n"
                        "credentials-file: /etc/cloudflared/creds/credentials.json\n"
                        "ingress:\n  - service: http_status:404\n")
            self.assertEqual(subprocess.run([binary, "validate", config], capture_output=True).returncode, 0)

    def test_the_charts_readme_lists_every_value(self):
        readme = (ROOT / "chart/README.md").read_text()
        table = readme[readme.index("## Values"):]
        for key, value in chart().values.items():
            self.assertRegex(table, rf"`{key}[`.]", f"chart/README.md: no row for {key}")
            if isinstance(value, dict) and key not in ("updateStrategy", "podSecurityContext",
                                                       "securityContext", "baseConfig", "resources"):
                for child in value:
                    self.assertRegex(table, rf"`({key})?\.{child}[`.]",
                                     f"chart/README.md: no row for {key}.{child}")


if __name__ == "__main__":
    unittest.main()
