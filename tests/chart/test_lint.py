"""`helm lint --strict`, with Helm's own linter, for every scenario."""

import unittest

import helm_python as helm

from chartlib import CHART, NAMESPACE, SCENARIOS, chart

WARNING = 2


class Lint(unittest.TestCase):
    def test_every_scenario_lints_clean_in_strict_mode(self):
        for name, vals in SCENARIOS.items():
            with self.subTest(scenario=name):
                report = helm.lint(CHART, vals, strict=True, namespace=NAMESPACE, kube_version="v1.32.0")
                self.assertEqual(report["total_charts_linted"], 1)
                self.assertEqual(report["errors"], [], f"{name}: {report}")
                # Info messages ("icon is recommended") are fine; warnings are not.
                serious = [m for m in report["messages"] if m["severity"] >= WARNING]
                self.assertEqual(serious, [], f"{name}: {serious}")

    def test_lint_fails_without_the_credentials_secret(self):
        report = helm.lint(CHART, None, strict=True, namespace=NAMESPACE)
        self.assertNotEqual(report["errors"], [])
        self.assertIn("credentialsSecret", "\n".join(report["errors"]))

    def test_native_sidecars_need_kubernetes_1_29(self):
        # signal mode runs cloudflared-routes as an init container with restartPolicy: Always,
        # on by default from Kubernetes 1.29: Chart.yaml says so, and Helm refuses older ones.
        self.assertEqual(chart().metadata["kubeVersion"], ">=1.29.0-0")

if __name__ == "__main__":
    unittest.main()
