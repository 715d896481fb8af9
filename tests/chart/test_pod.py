"""The pod each reload mode runs: containers, command lines, shared files, probes, security,
shutdown timing."""

import os.path
import re
import unittest

import kubernetes_validate
import yaml

from chartlib import (CHART, KUBE_VERSION, NAMESPACE, SCENARIOS, SECRET, all_containers, container, effective_security,
                      env, flag, mount_of, of_kind, one, pod_spec, port_number, render,
                      render_values, routes_container, seconds, single_flag, split_argv, values,
                      volumes)

SUPERVISE = ("supervise", "supervise-everything")
SIGNAL = ("signal", "signal-everything")
UID = 65532  # the official cloudflared image's user


def cloudflared_argv(args):
    """The flags of `cloudflared tunnel` (between `tunnel` and `run`), checking the shape."""
    assert args.count("tunnel") == 1 and args.count("run") == 1, args
    assert args[-1] == "run", f"nothing may follow `run` (cloudflared exits 0 on it): {args}"
    return args[args.index("tunnel") + 1:-1]


def cloudflared_flag(tunnel_flags, name):
    values = flag(tunnel_flags, name)
    assert len(values) == 1, f"{name}: {tunnel_flags}"
    return values[0]


class Supervise(unittest.TestCase):
    def test_one_container_runs_cloudflared_as_its_child(self):
        for name in SUPERVISE:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                self.assertEqual([c["name"] for c in all_containers(spec)], ["cloudflared-routes"])
                self.assertNotIn("shareProcessNamespace", spec)
                args, child = split_argv(routes_container(spec)["args"])
                self.assertEqual(args[0], "run")
                self.assertEqual(single_flag(args, "--reload"), "supervise")
                self.assertEqual(flag(args, "--cloudflared-pidfile"), [])
                self.assertEqual(flag(args, "--stagger"), [], "no restart gap to stagger")
                # `cloudflared --no-autoupdate tunnel [flags] run`; --config is inserted by
                # cloudflared-routes after `tunnel`, --metrics per child: neither is given.
                self.assertTrue(child[0].endswith("/cloudflared"), child)
                self.assertEqual(child[1:3], ["--no-autoupdate", "tunnel"])
                tunnel_flags = cloudflared_argv(child)
                for refused in ("--config", "--metrics", "--token", "--token-file", "--pidfile"):
                    self.assertNotIn(refused, tunnel_flags)

    def test_cloudflared_flags_go_before_run(self):
        spec = pod_spec(render("supervise-everything"))
        _, child = split_argv(routes_container(spec)["args"])
        self.assertEqual(cloudflared_argv(child), ["--protocol", "http2"])

    def test_readiness_is_routes_readyz_because_child_metrics_ports_alternate(self):
        for name in SUPERVISE:
            with self.subTest(scenario=name):
                routes = routes_container(pod_spec(render(name)))
                args, _ = split_argv(routes["args"])
                admin_port = int(single_flag(args, "--admin-addr").rsplit(":", 1)[1])
                probe = routes["readinessProbe"]["httpGet"]
                self.assertEqual(probe["path"], "/readyz")
                self.assertEqual(port_number(routes, probe["port"]), admin_port)

    def test_drain_timeout_is_above_the_grace_period_and_below_the_pod_limit(self):
        for grace in (30, 90, 180):
            with self.subTest(grace=grace):
                spec = pod_spec(render_values(values({"cloudflared": {"gracePeriodSeconds": grace}})))
                routes = routes_container(spec)
                args, _ = split_argv(routes["args"])
                drain = seconds(single_flag(args, "--drain-timeout"))
                # Children inherit TUNNEL_GRACE_PERIOD from cloudflared-routes' environment.
                self.assertEqual(seconds(env(routes)["TUNNEL_GRACE_PERIOD"]["value"]), grace)
                self.assertGreater(drain, grace)
                self.assertGreater(spec["terminationGracePeriodSeconds"], drain)


class Signal(unittest.TestCase):
    def test_two_containers_share_the_process_namespace_as_one_uid(self):
        for name in SIGNAL:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                self.assertIs(spec["shareProcessNamespace"], True)
                names = sorted(c["name"] for c in all_containers(spec))
                self.assertEqual(names, ["cloudflared", "cloudflared-routes"])
                uids = {effective_security(spec, c, "runAsUser") for c in all_containers(spec)}
                self.assertEqual(uids, {UID}, "cloudflared-routes may signal only its own uid")

    def test_routes_is_a_native_sidecar_started_before_cloudflared(self):
        # The kubelet starts cloudflared once cloudflared-routes' startup probe passes: once
        # a config cloudflared-routes validates exists.
        for name in SIGNAL:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                (routes,) = spec["initContainers"]
                self.assertEqual(routes["name"], "cloudflared-routes")
                self.assertEqual(routes["restartPolicy"], "Always")
                config_out = single_flag(split_argv(routes["args"])[0], "--config-out")
                command = routes["startupProbe"]["exec"]["command"]
                self.assertEqual(command[1:], ["validate", config_out])
                self.assertEqual([c["name"] for c in spec["containers"]], ["cloudflared"])

    def test_cloudflared_reads_the_file_cloudflared_routes_writes(self):
        for name in SIGNAL:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                routes, cloudflared = routes_container(spec), container(spec, "cloudflared")
                args, child = split_argv(routes["args"])
                self.assertEqual(child, [], "no supervised argv in signal mode")
                self.assertEqual(single_flag(args, "--reload"), "signal")
                self.assertEqual(cloudflared["command"][1:], ["--no-autoupdate"])
                tunnel_flags = cloudflared_argv(cloudflared["args"])

                config = single_flag(args, "--config-out")
                self.assertEqual(cloudflared_flag(tunnel_flags, "--config"), config)
                pidfile = single_flag(args, "--cloudflared-pidfile")
                self.assertEqual(cloudflared_flag(tunnel_flags, "--pidfile"), pidfile)

                # Both files live on emptyDirs mounted in both containers, at the same place;
                # only the writer of each mounts it writable.
                vols = volumes(spec)
                for path, writer, reader in ((config, routes, cloudflared), (pidfile, cloudflared, routes)):
                    w, r = mount_of(writer, path), mount_of(reader, path)
                    self.assertEqual((w["name"], w["mountPath"]), (r["name"], r["mountPath"]), path)
                    self.assertIn("emptyDir", vols[w["name"]], path)
                    self.assertFalse(w.get("readOnly", False), f"{writer['name']} writes {path}")
                    self.assertTrue(r.get("readOnly", False), f"{reader['name']} only reads {path}")
                    self.assertEqual(os.path.dirname(path), w["mountPath"])

                # The config names the credentials file by cloudflared-routes' path: cloudflared
                # must see it at the same path.
                creds = single_flag(args, "--credentials-file")
                self.assertEqual(mount_of(routes, creds), mount_of(cloudflared, creds))

    def test_readiness_and_verification_use_cloudflareds_metrics_server(self):
        for name in SIGNAL:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                routes, cloudflared = routes_container(spec), container(spec, "cloudflared")
                args, _ = split_argv(routes["args"])
                tunnel_flags = cloudflared_argv(cloudflared["args"])
                listen = cloudflared_flag(tunnel_flags, "--metrics")
                self.assertEqual(listen.rsplit(":", 1)[0], "0.0.0.0")
                port = int(listen.rsplit(":", 1)[1])
                self.assertEqual(single_flag(args, "--cloudflared-metrics"), f"127.0.0.1:{port}")
                probe = cloudflared["readinessProbe"]["httpGet"]
                self.assertEqual(probe["path"], "/ready")
                self.assertEqual(port_number(cloudflared, probe["port"]), port)
                # No readiness on the sidecar: the pod is ready when cloudflared is.
                self.assertNotIn("readinessProbe", routes)

    def test_grace_period_and_ready_timeout(self):
        for grace in (30, 120):
            with self.subTest(grace=grace):
                spec = pod_spec(render_values(values({"reload": {"mode": "signal"},
                                                      "cloudflared": {"gracePeriodSeconds": grace}})))
                routes, cloudflared = routes_container(spec), container(spec, "cloudflared")
                self.assertEqual(seconds(env(cloudflared)["TUNNEL_GRACE_PERIOD"]["value"]), grace)
                self.assertNotIn("TUNNEL_GRACE_PERIOD", env(routes))
                self.assertGreater(spec["terminationGracePeriodSeconds"], grace)
                # A restart costs the grace period plus the kubelet's back-off (up to 5 min).
                args, _ = split_argv(routes["args"])
                self.assertGreater(seconds(single_flag(args, "--ready-timeout")), grace + 300)
                self.assertEqual(flag(args, "--drain-timeout"), [])

    def test_replicas_take_turns_restarting_cloudflared(self):
        args, _ = split_argv(routes_container(pod_spec(render_values(values({"reload": {"mode": "signal"}}))))["args"])
        self.assertEqual(single_flag(args, "--stagger"), "lease")
        self.assertEqual(flag(args, "--stagger-max-wait"), [], "the binary's default")
        spec = pod_spec(render_values(values({"reload": {"mode": "signal", "stagger": "none",
                                                         "staggerMaxWait": "2m"}})))
        args, _ = split_argv(routes_container(spec)["args"])
        self.assertEqual(single_flag(args, "--stagger"), "none")
        self.assertEqual(single_flag(args, "--stagger-max-wait"), "2m")


class BothModes(unittest.TestCase):
    def test_the_config_directory_is_an_empty_dir(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                routes = routes_container(spec)
                config = single_flag(split_argv(routes["args"])[0], "--config-out")
                m = mount_of(routes, config)
                self.assertEqual(volumes(spec)[m["name"]]["emptyDir"], {})
                self.assertFalse(m.get("readOnly", False))

    def test_credentials_come_from_the_existing_secret_as_a_file(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                routes = routes_container(spec)
                creds = single_flag(split_argv(routes["args"])[0], "--credentials-file")
                m = mount_of(routes, creds)
                self.assertTrue(m["readOnly"])
                # A directory mount, not subPath: a rotated Secret reaches the pod.
                self.assertNotIn("subPath", m)
                secret = volumes(spec)[m["name"]]["secret"]
                self.assertEqual(secret["secretName"], SECRET)
                self.assertEqual(secret["items"], [{"key": "credentials.json",
                                                    "path": os.path.relpath(creds, m["mountPath"])}])
                # Readable by the pod's group (fsGroup), by no one else.
                self.assertEqual(secret["defaultMode"] & 0o007, 0)
                self.assertEqual(spec["securityContext"]["fsGroup"], UID)

    def test_a_custom_secret_key(self):
        spec = pod_spec(render_values(values({"tunnel": {"credentialsKey": "tunnel.json"}})))
        (secret,) = [v["secret"] for v in spec["volumes"] if "secret" in v]
        self.assertEqual(secret["items"], [{"key": "tunnel.json", "path": "credentials.json"}])

    def test_nothing_reads_a_secret_through_the_environment(self):
        for name in SCENARIOS:
            for c in all_containers(pod_spec(render(name))):
                with self.subTest(scenario=name, container=c["name"]):
                    for e in c.get("env", []):
                        self.assertNotIn("secretKeyRef", e.get("valueFrom", {}))
                    self.assertNotIn("envFrom", c)

    def test_pod_name_and_namespace_for_leader_election(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                e = env(routes_container(pod_spec(render(name))))
                self.assertEqual(e["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
                self.assertEqual(e["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
                                 "metadata.namespace")

    def test_every_container_is_locked_down(self):
        for name in SCENARIOS:
            spec = pod_spec(render(name))
            self.assertIs(spec["securityContext"]["runAsNonRoot"], True)
            self.assertEqual(spec["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
            for c in all_containers(spec):
                with self.subTest(scenario=name, container=c["name"]):
                    sc = c["securityContext"]
                    self.assertIs(sc["runAsNonRoot"], True)
                    self.assertEqual(sc["runAsUser"], UID)
                    self.assertIs(sc["readOnlyRootFilesystem"], True)
                    self.assertIs(sc["allowPrivilegeEscalation"], False)
                    self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
                    self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
                    self.assertNotIn("privileged", sc)

    def test_every_container_has_probes(self):
        for name in SCENARIOS:
            spec = pod_spec(render(name))
            readiness = []
            for c in all_containers(spec):
                with self.subTest(scenario=name, container=c["name"]):
                    self.assertIn("livenessProbe", c)
                    if "readinessProbe" in c:
                        readiness.append(c["name"])
            self.assertEqual(len(readiness), 1, f"{name}: one container decides readiness")
            routes = routes_container(spec)
            live = routes["livenessProbe"]["httpGet"]
            self.assertEqual(live["path"], "/healthz")
            admin = single_flag(split_argv(routes["args"])[0], "--admin-addr")
            self.assertEqual(port_number(routes, live["port"]), int(admin.rsplit(":", 1)[1]))

    def test_termination_grace_period_is_above_cloudflareds(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                self.assertGreater(spec["terminationGracePeriodSeconds"], 30 + 5)
        spec = pod_spec(render_values(values({"terminationGracePeriodSeconds": 120})))
        self.assertEqual(spec["terminationGracePeriodSeconds"], 120)
        with self.assertRaisesRegex(Exception, "terminationGracePeriodSeconds"):
            render_values(values({"terminationGracePeriodSeconds": 30}))

    def test_service_links_stay_out_of_cloudflareds_environment(self):
        # A Service named `tunnel-…` would inject TUNNEL_* variables, which cloudflared reads.
        for name in SCENARIOS:
            self.assertIs(pod_spec(render(name))["enableServiceLinks"], False)

    def test_no_sub_path_mounts_and_every_volume_is_mounted(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                used = set()
                for c in all_containers(spec):
                    for m in c.get("volumeMounts", []):
                        self.assertNotIn("subPath", m)
                        self.assertIn(m["name"], volumes(spec))
                        used.add(m["name"])
                self.assertEqual(used, set(volumes(spec)))

    def test_base_config_is_a_config_map_directory(self):
        for name in ("supervise-everything", "signal-everything"):
            with self.subTest(scenario=name):
                objects = render(name)
                spec = pod_spec(objects)
                routes = routes_container(spec)
                base = single_flag(split_argv(routes["args"])[0], "--base-config")
                m = mount_of(routes, base)
                cm = one(objects, "ConfigMap")
                self.assertEqual(volumes(spec)[m["name"]]["configMap"]["name"], cm["metadata"]["name"])
                data = yaml.safe_load(cm["data"][os.path.relpath(base, m["mountPath"])])
                self.assertEqual(data, SCENARIOS[name]["baseConfig"])
        for name in ("supervise", "signal"):
            objects = render(name)
            self.assertEqual(of_kind(objects, "ConfigMap"), [])
            self.assertEqual(flag(split_argv(routes_container(pod_spec(objects))["args"])[0],
                                  "--base-config"), [])

    def test_gateways_served(self):
        cases = [
            ({}, []),
            ({"gateway": {"create": True}}, [f"{NAMESPACE}/edge-cloudflared-routes"]),
            ({"gateway": {"create": True, "namespace": "gw"}}, ["gw/edge-cloudflared-routes"]),
            ({"gateways": ["a/one", "b/two"]}, ["a/one", "b/two"]),
            # The chart's own Gateway is always served with the listed ones: a Gateway this
            # release creates but does not serve would have no tunnel (or another's).
            ({"gateways": ["a/one"], "gateway": {"create": True}},
             ["a/one", f"{NAMESPACE}/edge-cloudflared-routes"]),
            ({"gateways": [f"{NAMESPACE}/edge-cloudflared-routes", "a/one"], "gateway": {"create": True}},
             [f"{NAMESPACE}/edge-cloudflared-routes", "a/one"]),
        ]
        for override, expected in cases:
            with self.subTest(values=override):
                objects = render_values(values(override))
                args, _ = split_argv(routes_container(pod_spec(objects))["args"])
                self.assertEqual(flag(args, "--gateway"), expected)

    def test_extra_env_and_args(self):
        for name in ("supervise-everything", "signal-everything"):
            with self.subTest(scenario=name):
                spec = pod_spec(render(name))
                routes = routes_container(spec)
                args, _ = split_argv(routes["args"])
                self.assertEqual(single_flag(args, "--lease-duration"), "30s")
                self.assertEqual(single_flag(args, "--log-level"), "cloudflared_routes=debug")
                self.assertEqual(single_flag(args, "--log-format"), "json")
                self.assertEqual(env(routes)["RUST_BACKTRACE"]["value"], "1")
                # cloudflared's own environment goes where cloudflared runs.
                runs_cloudflared = routes if name.startswith("supervise") else container(spec, "cloudflared")
                self.assertEqual(env(runs_cloudflared)["TUNNEL_LOGLEVEL"]["value"], "debug")

    def test_replicas_rollout_and_disruption_budget(self):
        objects = render("supervise")
        deployment = one(objects, "Deployment")
        self.assertEqual(deployment["spec"]["replicas"], 2)
        # A new pod is ready before an old one stops: a connector is always there.
        self.assertEqual(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
        pdb = one(objects, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertNotIn("minAvailable", pdb["spec"])
        self.assertEqual(pdb["spec"]["selector"], deployment["spec"]["selector"])
        everything = render("supervise-everything")
        self.assertEqual(one(everything, "Deployment")["spec"]["replicas"], 3)
        self.assertEqual(one(everything, "PodDisruptionBudget")["spec"], {
            "minAvailable": 1, "selector": pdb["spec"]["selector"]})
        self.assertEqual(of_kind(render_values(values({"podDisruptionBudget": {"enabled": False}})),
                                 "PodDisruptionBudget"), [])

    def test_ports_that_clash_in_the_pod_are_refused(self):
        # The containers share one network namespace: the second listener's bind would fail
        # at run time, so the chart refuses to render.
        for override, words in [
            # signal: the admin server and cloudflared's metrics server.
            ({"reload": {"mode": "signal"}, "admin": {"port": 2000}}, ["admin.port", "cloudflared.metricsPort", "2000"]),
            ({"reload": {"mode": "signal"}, "cloudflared": {"metricsPort": 8081}}, ["admin.port", "cloudflared.metricsPort", "8081"]),
            # supervise: the admin server and the children's metrics ports.
            ({"admin": {"port": 20241}}, ["admin.port", "20241", "--supervise-metrics-ports"]),
            ({"admin": {"port": 20242}}, ["admin.port", "20242"]),
            ({"admin": {"port": 9001}, "extraArgs": ["--supervise-metrics-ports", "9000,9001"]}, ["9000,9001"]),
            ({"admin": {"port": 9000}, "extraArgs": ["--supervise-metrics-ports=9000,9001"]}, ["9000,9001"]),
        ]:
            with self.subTest(values=override):
                with self.assertRaises(Exception) as caught:
                    render_values(values(override))
                for word in words:
                    self.assertIn(word, str(caught.exception))
        # The same numbers where they do not meet: cloudflared.metricsPort is signal mode's,
        # and the children's ports are supervise mode's (or moved by --supervise-metrics-ports).
        for override in [
            {"admin": {"port": 2000}},
            {"reload": {"mode": "signal"}, "admin": {"port": 20241}},
            {"admin": {"port": 20241}, "extraArgs": ["--supervise-metrics-ports=9000,9001"]},
        ]:
            with self.subTest(values=override):
                render_values(values(override))

    def test_replicas_prefer_different_nodes_unless_told_otherwise(self):
        # By default: a soft (preferred) anti-affinity on the node, so a drain or a node failure
        # takes one connector, and a small cluster still schedules every replica.
        for name in ("supervise", "signal"):
            with self.subTest(scenario=name):
                objects = render(name)
                selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
                self.assertEqual(pod_spec(objects)["affinity"], {"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": selector}}}]}})
                self.assertNotIn("requiredDuringSchedulingIgnoredDuringExecution",
                                 pod_spec(objects)["affinity"]["podAntiAffinity"])
        # The user's affinity replaces it, as written (no merge).
        for name in ("supervise-everything", "signal-everything"):
            with self.subTest(scenario=name):
                self.assertEqual(pod_spec(render(name))["affinity"], SCENARIOS[name]["affinity"])
        node_only = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "edge", "operator": "In", "values": ["true"]}]}]}}}
        self.assertEqual(pod_spec(render_values(values({"affinity": node_only})))["affinity"], node_only)
        # Or it is turned off.
        self.assertNotIn("affinity", pod_spec(render_values(values({"podAntiAffinity": "none"}))))

    def test_the_resources_values_yaml_suggests_are_valid_per_mode(self):
        # `resources` stays empty (requests depend on the traffic and the cluster), but
        # values.yaml suggests starting points for each mode in a comment: uncommented, they
        # must install, reach the container that runs each process, and have no CPU limit.
        text = (CHART / "values.yaml").read_text()
        block = re.search(r"^#   supervise:\n(?:#   .*\n)+", text, re.M)
        self.assertIsNotNone(block, "values.yaml: no suggested resources (`#   supervise:` ...)")
        suggested = yaml.safe_load("".join(line[2:] + "\n" for line in block.group(0).splitlines()))
        self.assertEqual(set(suggested), {"supervise", "signal"})
        for mode, override in suggested.items():
            with self.subTest(mode=mode):
                objects = render_values(values({"reload": {"mode": mode}}, override))
                kubernetes_validate.validate(one(objects, "Deployment"), KUBE_VERSION, strict=True)
                spec = pod_spec(objects)
                for c in all_containers(spec):
                    resources = c["resources"]
                    self.assertNotIn("cpu", resources.get("limits", {}), c["name"])
                    self.assertEqual(set(resources["requests"]), {"cpu", "memory"}, c["name"])
                    self.assertIn("memory", resources["limits"], c["name"])

    def test_images(self):
        spec = pod_spec(render_values(values({"reload": {"mode": "signal"},
                                              "image": {"repository": "registry.example/cfr", "tag": "1.2.3"},
                                              "cloudflared": {"image": {"tag": "2025.9.1"}}})))
        self.assertEqual(routes_container(spec)["image"], "registry.example/cfr:1.2.3")
        self.assertEqual(container(spec, "cloudflared")["image"], "cloudflare/cloudflared:2025.9.1")


if __name__ == "__main__":
    unittest.main()
