"""RBAC with least privilege: exactly what `run` uses (docs/kubernetes.md), nothing on Secrets."""

import unittest

from chartlib import (NAMESPACE, SCENARIOS, of_kind, one, pod_spec, render, render_values,
                      values)

GATEWAY = "gateway.networking.k8s.io"

# Cluster-wide: the watched kinds (list + watch), `get` on those whose status is written (the
# status writer GETs the object itself), and `patch` on their status subresource (it sends a
# merge patch to /status). The kinds only watched are never read one by one: no `get`.
WRITTEN = ("gatewayclasses", "gateways", "httproutes", "grpcroutes")
CLUSTER = {
    *{(GATEWAY, r, v) for r in WRITTEN + ("referencegrants", "backendtlspolicies")
       for v in ("list", "watch")},
    *{(GATEWAY, r, "get") for r in WRITTEN},
    *{(GATEWAY, f"{r}/status", "patch") for r in WRITTEN},
    *{("", r, v) for r in ("services", "namespaces") for v in ("list", "watch")},
}
# In the release namespace: the leader-election Lease, read, created and replaced (PUT with the
# resourceVersion read).
NAMESPACED = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}


def grants(role):
    out = set()
    for rule in role["rules"]:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


class Rbac(unittest.TestCase):
    def test_nothing_on_secrets_and_no_wildcards(self):
        for name in SCENARIOS:
            objects = render(name)
            for role in of_kind(objects, "ClusterRole") + of_kind(objects, "Role"):
                for rule in role["rules"]:
                    with self.subTest(scenario=name, role=role["metadata"]["name"], rule=rule):
                        self.assertNotIn("secrets", rule.get("resources", []))
                        self.assertFalse(any("secret" in r for r in rule.get("resources", [])))
                        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                            self.assertNotIn("*", rule.get(key, []))
                        self.assertNotIn("nonResourceURLs", rule)
                        for verb in ("delete", "deletecollection", "escalate", "bind", "impersonate"):
                            self.assertNotIn(verb, rule["verbs"])

    def test_the_cluster_role_grants_exactly_what_run_uses(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                self.assertEqual(grants(one(render(name), "ClusterRole")), CLUSTER)

    def test_leases_only_in_the_release_namespace(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                role = one(render(name), "Role")
                self.assertEqual(role["metadata"]["namespace"], NAMESPACE)
                self.assertEqual(grants(role), NAMESPACED)

    def test_bindings_give_the_roles_to_the_pods_service_account(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                objects = render(name)
                sa = one(objects, "ServiceAccount")
                self.assertEqual(pod_spec(objects)["serviceAccountName"], sa["metadata"]["name"])
                subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                           "namespace": NAMESPACE}
                for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"),
                                                ("RoleBinding", "Role")):
                    binding, role = one(objects, binding_kind), one(objects, role_kind)
                    self.assertEqual(binding["subjects"], [subject])
                    self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                          "kind": role_kind, "name": role["metadata"]["name"]})
                    if binding_kind == "RoleBinding":
                        self.assertEqual(binding["metadata"]["namespace"], role["metadata"]["namespace"])

    def test_cluster_scoped_names_hold_the_release_namespace(self):
        # One release name in two namespaces (two tunnels) must not claim the same ClusterRole
        # or ClusterRoleBinding: Helm would refuse the second install (the object belongs to
        # the first release), or a shared name would leave one release's binding to the other.
        def cluster_names(objects):
            return {(o["kind"], o["metadata"]["name"]) for o in objects
                    if o["kind"] in ("ClusterRole", "ClusterRoleBinding")}

        first = render_values(values(), namespace="tunnel-a")
        second = render_values(values(), namespace="tunnel-b")
        self.assertEqual(len(cluster_names(first)), 2)
        self.assertEqual(cluster_names(first) & cluster_names(second), set())
        for objects, namespace in ((first, "tunnel-a"), (second, "tunnel-b")):
            role = one(objects, "ClusterRole")["metadata"]["name"]
            self.assertIn(namespace, role)
            self.assertEqual(one(objects, "ClusterRoleBinding")["roleRef"]["name"], role)
        # Not even when a release name and a namespace trade a suffix: `a-b` in `c` and `a` in
        # `b-c`.
        self.assertEqual(cluster_names(render_values(values({"fullnameOverride": "a-b"}), namespace="c"))
                         & cluster_names(render_values(values({"fullnameOverride": "a"}), namespace="b-c")),
                         set())
        # The longest full name and namespace (63 characters each) still give a valid RBAC name
        # (a path segment of at most 253 characters).
        longest = render_values(values({"fullnameOverride": "f" * 63}), namespace="n" * 63)
        for kind in ("ClusterRole", "ClusterRoleBinding"):
            self.assertLessEqual(len(one(longest, kind)["metadata"]["name"]), 253)

    def test_rbac_and_service_account_can_be_left_to_the_user(self):
        objects = render_values(values({"rbac": {"create": False},
                                        "serviceAccount": {"create": False, "name": "mine"}}))
        kinds = {o["kind"] for o in objects}
        self.assertEqual(kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                                  "ServiceAccount"}, set())
        self.assertEqual(pod_spec(objects)["serviceAccountName"], "mine")
        # An existing ServiceAccount of the user's, with the chart's roles bound to it.
        objects = render_values(values({"serviceAccount": {"create": False, "name": "mine"}}))
        self.assertEqual(of_kind(objects, "ServiceAccount"), [])
        for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": "mine",
                                                    "namespace": NAMESPACE}])

    def test_the_roles_are_never_bound_to_the_default_service_account(self):
        # Every pod of the namespace that runs as `default` would read Gateway API objects,
        # Services and Namespaces cluster-wide and patch status.
        with self.assertRaisesRegex(Exception, r"serviceAccount\.name.*`default`|`default`.*serviceAccount\.name"):
            render_values(values({"serviceAccount": {"create": False}}))
        # Without the chart's RBAC the pod may run as `default`: its roles are the user's.
        objects = render_values(values({"serviceAccount": {"create": False}, "rbac": {"create": False}}))
        self.assertEqual(pod_spec(objects)["serviceAccountName"], "default")
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            self.assertEqual(of_kind(objects, kind), [])


if __name__ == "__main__":
    unittest.main()
