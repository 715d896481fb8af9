"""NOTES.txt, what `helm install` prints: the Gateways served, and a warning where one replica
meets a PodDisruptionBudget."""

import unittest

from chartlib import NAMESPACE, render_notes, values


class Notes(unittest.TestCase):
    def test_the_gateways_served_are_listed(self):
        notes = render_notes(values({"gateways": ["a/one"], "gateway": {"create": True}}))
        self.assertIn("  - Gateway a/one\n", notes)
        self.assertIn(f"  - Gateway {NAMESPACE}/edge-cloudflared-routes\n", notes)
        self.assertIn("every Gateway whose GatewayClass has controllerName", render_notes(values()))

    def test_one_replica_with_a_disruption_budget_is_warned_about(self):
        # With one pod a budget either allows no eviction (a drain never completes) or allows
        # evicting the only pod (the tunnel loses its only connector).
        blocks, evicts = "allows no eviction", "the tunnel's only connector"
        for override, expected in [
            ({}, evicts),  # the default budget: maxUnavailable 1
            ({"podDisruptionBudget": {"maxUnavailable": "50%"}}, evicts),
            ({"podDisruptionBudget": {"maxUnavailable": 0}}, blocks),
            ({"podDisruptionBudget": {"minAvailable": 1}}, blocks),
            ({"podDisruptionBudget": {"minAvailable": "100%"}}, blocks),
            ({"podDisruptionBudget": {"minAvailable": 0}}, evicts),
        ]:
            with self.subTest(values=override):
                notes = render_notes(values({"replicas": 1}, override))
                self.assertIn("WARNING: replicas is 1 with a PodDisruptionBudget", notes)
                self.assertIn(expected, notes)
                self.assertNotIn(blocks if expected == evicts else evicts, notes)
                self.assertIn("Set replicas to 2 or more", notes)

    def test_no_warning_otherwise(self):
        for override in [{}, {"replicas": 3, "podDisruptionBudget": {"minAvailable": 1}},
                         {"replicas": 1, "podDisruptionBudget": {"enabled": False}}]:
            with self.subTest(values=override):
                self.assertNotIn("WARNING", render_notes(values(override)))


if __name__ == "__main__":
    unittest.main()
