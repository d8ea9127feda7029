"""Groups, membership tests and path conditions (issue 11): what a collective runs on, which tests
make it symmetric within its group, and what ESP004 says when one nearly did."""

from __future__ import annotations

import libcst as cst
import pytest
from analysis_helpers import found, messages

from esper_lint.analysis.groups import WORLD, GroupTracker
from esper_lint.analysis.paths import And, Atom, AtomKind, Not, Or, depends_on_rank
from esper_lint.analysis.symbols import Imports


def _tracker(setup: str) -> GroupTracker:
    module = cst.parse_module(setup)
    imports = Imports()
    tracker = GroupTracker(module, imports.qualify)
    for statement in module.body:
        assert isinstance(statement, cst.SimpleStatementLine)
        small = statement.body[0]
        if isinstance(small, cst.Import):
            imports.add_import(small)
        elif isinstance(small, cst.Assign):
            tracker.note_assignment(small.targets[0].target, small.value)
    return tracker


def _call(tracker: GroupTracker, source: str) -> cst.Call:
    node = cst.parse_expression(source)
    assert isinstance(node, cst.Call)
    return node


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("dist.all_reduce(t, op, g)", "g"),
        ("dist.all_reduce(t, group=g)", "g"),
        ("dist.broadcast(t, 0, g)", "g"),
        ("dist.reduce(t, 0, op, g)", "g"),
        ("dist.barrier(g)", "g"),
        ("dist.barrier(group=g)", "g"),
        ("dist.all_to_all_single(o, i, None, None, g)", "g"),
        ("dist.gather_object(o, lst, 0, g)", "g"),
        ("dist.all_reduce(t)", None),
        ("dist.all_reduce(t, group=None)", None),
        ("dist.barrier(group=dist.group.WORLD)", None),
        ("dist.new_group([0, 1])", None),
        ("dist.new_group([0, 1], use_local_synchronization=True)", "new_group([0, 1])"),
        ("accelerator.wait_for_everyone()", None),
    ],
)
def test_the_group_of_a_collective(source: str, text: str | None) -> None:
    tracker = _tracker("import torch.distributed as dist\n")
    assert tracker.group_of(_call(tracker, source)).text == text


def test_group_origins_follow_constructors_aliases_and_ranks_of() -> None:
    tracker = _tracker(
        "import torch.distributed as dist\n"
        "g = dist.new_group(ranks)\n"
        "self.pp_group = g\n"
        "cur, _ = dist.new_subgroups_by_enumeration(L)\n"
        "mine = next((r for r in L if rank in r), [])\n"
        "pg_ranks = dist.get_process_group_ranks(h)\n"
    )
    on_alias = tracker.group_of(_call(tracker, "dist.barrier(group=self.pp_group)"))
    assert "ranks:ranks" in on_alias.origins
    on_cur = tracker.group_of(_call(tracker, "dist.barrier(group=cur)"))
    is_rank = lambda node: isinstance(node, cst.Name) and node.value == "rank"  # noqa: E731
    element = tracker.membership(cst.parse_expression("rank in mine"), is_rank)
    assert element is not None and element.matches(on_cur)
    of_h = tracker.membership(cst.parse_expression("rank not in pg_ranks"), is_rank)
    assert of_h is not None and not of_h.member
    assert of_h.matches(tracker.group_of(_call(tracker, "dist.barrier(group=h)")))
    assert not of_h.matches(on_alias) and not of_h.matches(WORLD)


@pytest.mark.parametrize(
    ("test", "member"),
    [
        ("dist.get_rank(group=g) >= 0", True),
        ("dist.get_rank(g) != -1", True),
        ("dist.get_rank(group=g) == -1", False),
        ("g.rank() >= 0", True),
        ("g.rank() < 0", False),
        ("g is not None", True),
        ("g != GroupMember.NON_GROUP_MEMBER", True),
        ("g is None", False),
    ],
)
def test_membership_forms(test: str, member: bool) -> None:
    tracker = _tracker("import torch.distributed as dist\ng = dist.new_group(ranks)\n")
    found_membership = tracker.membership(cst.parse_expression(test), lambda _: False)
    assert found_membership is not None and found_membership.member is member
    on_g = tracker.group_of(_call(tracker, "dist.all_reduce(t, group=g)"))
    assert found_membership.matches(on_g)


def test_is_not_none_is_a_membership_test_only_for_a_constructed_group() -> None:
    tracker = _tracker("import torch.distributed as dist\nh = make_group()\n")
    assert tracker.membership(cst.parse_expression("h is not None"), lambda _: False) is None
    assert tracker.membership(cst.parse_expression("buf is None"), lambda _: False) is None


def test_truth_tables_of_path_conditions() -> None:
    in_order = Atom(AtomKind.UNIFORM, "in_order")
    main = Atom(AtomKind.RANK, "is_main")
    # the elif of `if not in_order and is_main` with test `in_order`
    assert not depends_on_rank(And((Not(And((Not(in_order), main))), in_order)))
    assert depends_on_rank(And((Not(in_order), main)))
    assert not depends_on_rank(Or((main, Not(main))))
    assert depends_on_rank(Or((main, in_order)))


def test_the_five_patterns_and_their_counter_examples() -> None:
    source = """
    import torch.distributed as dist

    def f(t, rank, ranks, local_rank, in_order, acc):
        g = dist.new_group(ranks)
        if rank in ranks:
            dist.broadcast(t, ranks[0], group=g)
        if rank in ranks and local_rank == 0:
            dist.broadcast(t, ranks[0], group=g)
        if not in_order and acc.is_main_process:
            print(t)
        elif in_order:
            acc.wait_for_everyone()
        if rank in ranks:
            local = dist.new_group(ranks, use_local_synchronization=True)
            world = dist.new_group(ranks)
        if rank not in ranks:
            raise ValueError(rank)
        dist.all_reduce(t, group=g)
        dist.all_reduce(t)
    """
    assert found(source) == {(8, "ESP004"), (15, "ESP004"), (19, "ESP004")}


def test_near_miss_messages_say_which_pattern_failed_and_why() -> None:
    source = """
    import torch.distributed as dist

    def f(t, rank, ranks, local_rank, other, src):
        g = dist.new_group(ranks)
        if rank in ranks and local_rank == 0:
            dist.broadcast(t, ranks[0], group=g)
        if rank in ranks:
            dist.all_reduce(t, group=other)
            dist.barrier()
            dist.new_group(ranks)
        if rank == src:
            dist.barrier(group=g)
            dist.barrier(group=g)
        else:
            dist.barrier(group=g)
    """
    got = messages(source)
    assert got[0].endswith(
        "controlled by the rank-dependent condition at line 5 (rank in ranks and local_rank == 0):"
        " the membership test matches the call's group, but local_rank == 0 differs within it"
    )
    assert got[1].endswith("the membership test (rank in ranks) is not of the call's group (other)")
    assert got[2].endswith(
        "the membership test (rank in ranks) is of a subgroup, but the call runs on the whole world"
    )
    assert got[3].endswith(
        "new_group() without use_local_synchronization=True must be called by every rank of the"
        " world, members or not"
    )
    assert got[4].endswith(
        "its branches make different sequences of collectives ([barrier(group=g), "
        "barrier(group=g)] vs [barrier(group=g)])"
    )


def test_sequences_are_compared_through_helpers_and_across_early_exits() -> None:
    source = """
    import torch.distributed as dist

    def send(t, g):
        dist.broadcast(t, 0, group=g)
        dist.broadcast(t, 0, group=g)

    def recv(t, g):
        dist.broadcast(t, 0, group=g)
        dist.broadcast(t, 0, group=g)

    def recv_once(t, g):
        dist.broadcast(t, 0, group=g)

    def alike(t, rank, g):
        if rank == 0:
            send(t, g)
        else:
            recv(t, g)

    def unlike(t, rank, g):
        if rank == 0:
            send(t, g)
        else:
            recv_once(t, g)

    def early(t, rank, g):
        if rank == 0:
            dist.broadcast(t, 0, group=g)
            return t
        dist.broadcast(t, 0, group=g)
        return t
    """
    assert found(source) == {(22, "ESP004"), (24, "ESP004")}


def test_an_elif_excluded_by_its_own_test_is_uniform_for_lifecycle_calls_too() -> None:
    source = """
    def f(slot, rank, warmup):
        if not warmup and rank == 0:
            print("log")
        elif warmup:
            slot.step_epoch()
        elif rank == 1:
            slot.advance_stage()
    """
    assert found(source) == {(7, "ESP001")}


def test_a_role_split_needs_a_membership_test_of_the_group() -> None:
    source = """
    import torch.distributed as dist

    def f(t, role, rank, ranks, other_ranks):
        g = dist.new_group(ranks)
        if role == rank:
            dist.broadcast(t, rank, group=g)
        elif rank in ranks:
            dist.broadcast(t, role, group=g)
        if role == rank:
            dist.broadcast(t, rank, group=g)
        elif rank in other_ranks:
            dist.broadcast(t, role, group=g)
    """
    assert found(source) == {(10, "ESP004"), (12, "ESP004")}
