"""Every rendered object against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field fails), and the CRD objects, which it has no schema for, by hand."""

import unittest

import kubernetes_validate

from chartlib import (CRD_KINDS, KUBE_VERSION, NAMESPACE, RELEASE, SCENARIOS, flag, one,
                      pod_spec, render, routes_container, split_argv)

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "GatewayClass"}

EXPECTED_KINDS = {
    "supervise": {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                  "Deployment", "PodDisruptionBudget"},
    "signal": {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
               "Deployment", "PodDisruptionBudget"},
}
EXPECTED_KINDS["supervise-everything"] = EXPECTED_KINDS["supervise"] | {
    "ConfigMap", "Service", "ServiceMonitor", "GatewayClass", "Gateway"}
EXPECTED_KINDS["signal-everything"] = EXPECTED_KINDS["supervise-everything"]


class KubernetesSchemas(unittest.TestCase):
    def test_every_scenario_renders_the_expected_kinds(self):
        self.assertEqual(set(SCENARIOS), set(EXPECTED_KINDS))
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                kinds = [o["kind"] for o in render(name)]
                self.assertEqual(set(kinds), EXPECTED_KINDS[name])

    def test_every_builtin_object_is_valid_for_kubernetes_1_32(self):
        for name in SCENARIOS:
            for obj in render(name):
                if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
                    continue  # no schema in kubernetes-validate: see the tests below
                with self.subTest(scenario=name, kind=obj["kind"], name=obj["metadata"]["name"]):
                    try:
                        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        self.fail(f"{'.'.join(map(str, e.path))}: {e.message}")

    def test_every_object_is_named_labelled_and_placed(self):
        for name in SCENARIOS:
            for obj in render(name):
                with self.subTest(scenario=name, kind=obj["kind"]):
                    meta = obj["metadata"]
                    self.assertRegex(meta["name"], r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
                    self.assertLessEqual(len(meta["name"]), 63)
                    self.assertEqual(meta["labels"]["app.kubernetes.io/instance"], RELEASE)
                    if obj["kind"] in CLUSTER_SCOPED:
                        self.assertNotIn("namespace", meta)
                    else:
                        self.assertEqual(meta["namespace"], NAMESPACE)

    def test_gateway_class_by_hand(self):
        for name in ("supervise-everything", "signal-everything"):
            objects = render(name)
            gc = one(objects, "GatewayClass")
            self.assertEqual(gc["apiVersion"], "gateway.networking.k8s.io/v1")
            self.assertEqual(gc["metadata"]["name"], "cloudflare-tunnel")
            # spec.controllerName is required, a domain-prefixed path, and the one we serve.
            args, _ = split_argv(routes_container(pod_spec(objects))["args"])
            self.assertEqual([gc["spec"]["controllerName"]], flag(args, "--controller-name"))
            self.assertRegex(gc["spec"]["controllerName"], r"^[a-z0-9.-]+/[^\s]+$")
            self.assertLessEqual(len(gc["spec"].get("description", "")), 64)
            self.assertEqual(set(gc["spec"]) - {"controllerName", "description"}, set())

    def test_gateway_by_hand(self):
        for name in ("supervise-everything", "signal-everything"):
            objects = render(name)
            gw = one(objects, "Gateway")
            self.assertEqual(gw["apiVersion"], "gateway.networking.k8s.io/v1")
            self.assertEqual(gw["spec"]["gatewayClassName"], one(objects, "GatewayClass")["metadata"]["name"])
            listeners = gw["spec"]["listeners"]
            self.assertTrue(1 <= len(listeners) <= 64)
            names = {lst["name"] for lst in listeners}
            self.assertEqual(len(names), len(listeners), "listener names are unique")
            for lst in listeners:
                self.assertIn(lst["protocol"], ("HTTP", "HTTPS"))
                self.assertTrue(1 <= lst["port"] <= 65535)
                self.assertRegex(lst["name"], r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
            self.assertEqual(set(gw["spec"]) - {"gatewayClassName", "listeners"}, set())
            # The chart's own Gateway is the one this release serves (one release, one tunnel).
            args, _ = split_argv(routes_container(pod_spec(objects))["args"])
            self.assertEqual(flag(args, "--gateway"), [f"{NAMESPACE}/public"])

    def test_service_monitor_by_hand(self):
        for name in ("supervise-everything", "signal-everything"):
            objects = render(name)
            sm = one(objects, "ServiceMonitor")
            self.assertEqual(sm["apiVersion"], "monitoring.coreos.com/v1")
            self.assertEqual(sm["metadata"]["labels"]["release"], "prometheus")
            svc = one(objects, "Service")
            # The ServiceMonitor selects the Service...
            for key, value in sm["spec"]["selector"]["matchLabels"].items():
                self.assertEqual(svc["metadata"]["labels"].get(key), value, key)
            self.assertEqual(sm["spec"]["namespaceSelector"]["matchNames"], [NAMESPACE])
            (endpoint,) = sm["spec"]["endpoints"]
            self.assertEqual(endpoint["path"], "/metrics")
            self.assertIn(endpoint["port"], [p["name"] for p in svc["spec"]["ports"]])
            self.assertRegex(endpoint["interval"], r"^([0-9]+(ms|s|m|h))+$")
            # ...which selects the pods, on the admin port of cloudflared-routes.
            pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
            for key, value in svc["spec"]["selector"].items():
                self.assertEqual(pod_labels.get(key), value, key)
            (port,) = svc["spec"]["ports"]
            routes = routes_container(pod_spec(objects))
            self.assertIn(port["targetPort"], [p["name"] for p in routes["ports"]])


if __name__ == "__main__":
    unittest.main()
