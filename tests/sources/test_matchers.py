"""Label matchers as Alertmanager writes them, and routing by them (plain functions)."""
import pytest

from webapp.sources.matchers import MatcherError, parse_matcher, route_destinations, split_matchers

LABELS = {"alertname": "HighCPU", "severity": "critical", "instance": "web-01:9100"}


@pytest.mark.parametrize("text,holds", [
    ('severity="critical"', True), ("severity=critical", True), ("severity = critical", True),
    ('severity!="critical"', False), ('severity=~"critical|page"', True), ('severity=~"crit"', False),  # anchored
    ('severity!~"warn.*"', True), ('instance=~"web-\\\\d+:.*"', True), ('instance=~"web-[0-9]+:.*"', True),
    ('team=""', True), ('team!=""', False), ('team=~".*"', True),  # a missing label is the empty string
    ('alertname="High\\"CPU"', False), ('alertname="HighCPU"', True),
])
def test_each_operator_as_alertmanager_applies_it(text, holds):
    assert parse_matcher(text).matches(LABELS) is holds


@pytest.mark.parametrize("text,says", [
    ("severity", "one of = != =~ !~"), ('="x"', "label name"), ('9a="x"', "label name"),
    ('a=~"(unclosed"', "regular expression"), ('a="x\\q"', "backslash"), ('a="x"y"', "double quote"),
    ('a=x"', "quoted value"), ("", "Empty"), ("a=" + "x" * 1000, "at most 1000"),
])
def test_what_is_not_a_matcher_is_refused_saying_why(text, says):
    with pytest.raises(MatcherError, match=says):
        parse_matcher(text)


def test_matchers_are_written_back_the_way_alertmanager_reads_them():
    assert str(parse_matcher('msg="say \\"hi\\"\\n"')) == 'msg="say \\"hi\\"\\n"'
    assert str(parse_matcher("severity = page")) == 'severity="page"'


def test_a_matcher_list_splits_on_commas_outside_quotes_and_braces():
    assert split_matchers('{severity=~"critical|page", msg="a, b"}') == ['severity=~"critical|page"', 'msg="a, b"']
    assert split_matchers(" a=1 ,, b=2\n") == ["a=1", "b=2"]


def test_routes_first_match_continue_and_defaults():
    routes = [{"matchers": ['team="db"'], "destination_ids": [1], "continue": True},
              {"matchers": ['severity=~"critical|page"'], "destination_ids": [2, 1]},
              {"matchers": [], "destination_ids": [3]}]  # no matchers: everything
    assert route_destinations(routes, [9], {"team": "db", "severity": "page"}) == [1, 2]
    assert route_destinations(routes, [9], {"team": "db", "severity": "info"}) == [1, 3]
    assert route_destinations(routes, [9], {"severity": "critical"}) == [2, 1]
    assert route_destinations(routes[:2], [9], {"severity": "info"}) == [9]
