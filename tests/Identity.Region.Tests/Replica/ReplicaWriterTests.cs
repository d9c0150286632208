using Identity.Region.Replica;
using Identity.Region.Tests.Infrastructure;
using static Identity.Region.Tests.Infrastructure.Events;

namespace Identity.Region.Tests.Replica;

/// <summary>The replica's rules on a real SQLite file: only a newer version changes anything.</summary>
public sealed class ReplicaWriterTests : IAsyncLifetime
{
    private ReplicaHost _host = null!;

    public async Task InitializeAsync() => _host = await ReplicaHost.CreateAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task ApplyUserChanged_Absent_InsertsSnapshot()
    {
        var outcome = await _host.ApplyAsync(User("u1", 3));

        Assert.Equal(ReplicaOutcome.Applied, outcome);
        var stored = await _host.UserAsync("u1");
        Assert.NotNull(stored);
        Assert.Equal((3L, "u1.v3@example.test", "member", "active", false), (stored.Version, stored.Email, stored.Role, stored.Status, stored.Deleted));
    }

    [Fact]
    public async Task ApplyUserChanged_NewerVersion_Applies()
    {
        await _host.ApplyAsync(User("u1", 1));

        var outcome = await _host.ApplyAsync(User("u1", 2) with { Status = "disabled" });

        Assert.Equal(ReplicaOutcome.Applied, outcome);
        var stored = await _host.UserAsync("u1");
        Assert.Equal((2L, "disabled", "u1.v2@example.test"), (stored!.Version, stored.Status, stored.Email));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(4)]
    [InlineData(1)]
    public async Task ApplyUserChanged_EqualOrOlderVersion_IsIgnored(long version)
    {
        await _host.ApplyAsync(User("u1", 5));

        var outcome = await _host.ApplyAsync(User("u1", version, email: "stale@example.test"));

        Assert.Equal(ReplicaOutcome.Ignored, outcome);
        var stored = await _host.UserAsync("u1");
        Assert.Equal((5L, "u1.v5@example.test"), (stored!.Version, stored.Email));
    }

    [Fact]
    public async Task ApplyUserChanged_DuplicateDeliveries_AreHarmless()
    {
        var snapshot = User("u1", 7);

        var outcomes = new List<ReplicaOutcome>();
        for (var i = 0; i < 3; i++)
        {
            outcomes.Add(await _host.ApplyAsync(snapshot));
        }

        Assert.Equal([ReplicaOutcome.Applied, ReplicaOutcome.Ignored, ReplicaOutcome.Ignored], outcomes);
        Assert.Single(await _host.LiveUsersAsync());
        Assert.Equal(7, (await _host.UserAsync("u1"))!.Version);
    }

    [Fact]
    public async Task ApplyUserChanged_OlderSnapshotAfterDelete_DoesNotResurrect()
    {
        await _host.ApplyAsync(User("u1", 2));
        Assert.Equal(ReplicaOutcome.Applied, await _host.ApplyAsync(Deleted("u1", 4)));

        var outcome = await _host.ApplyAsync(User("u1", 3));

        Assert.Equal(ReplicaOutcome.Ignored, outcome);
        var stored = await _host.UserAsync("u1");
        Assert.True(stored!.Deleted);
        Assert.Equal(4, stored.Version);
        Assert.Equal("", stored.Email); // a tombstone keeps no personal data
        Assert.Empty(await _host.LiveUsersAsync());
    }

    [Fact]
    public async Task ApplyUserDeleted_BeforeAnySnapshot_LeavesTombstoneThatOlderSnapshotsRespect()
    {
        Assert.Equal(ReplicaOutcome.Applied, await _host.ApplyAsync(Deleted("u1", 9)));

        Assert.Equal(ReplicaOutcome.Ignored, await _host.ApplyAsync(User("u1", 8)));
        Assert.Equal(ReplicaOutcome.Ignored, await _host.ApplyAsync(Deleted("u1", 9)));

        var stored = await _host.UserAsync("u1");
        Assert.Equal((true, 9L), (stored!.Deleted, stored.Version));
    }

    [Fact]
    public async Task ApplyUserDeleted_OlderThanStoredSnapshot_IsIgnored()
    {
        await _host.ApplyAsync(User("u1", 6));

        Assert.Equal(ReplicaOutcome.Ignored, await _host.ApplyAsync(Deleted("u1", 5)));

        Assert.False((await _host.UserAsync("u1"))!.Deleted);
    }

    [Fact]
    public async Task ApplyAccountChanged_WithoutOwnRegion_TombstonesThatAccountsUsersOnly()
    {
        await _host.ApplyAsync(AccountIn(1, Account, "eu", "us"));
        await _host.ApplyAsync(User("a1", 3, Account));
        await _host.ApplyAsync(User("a2", 5, Account));
        await _host.ApplyAsync(User("b1", 2, OtherAccount));

        var outcome = await _host.ApplyAsync(AccountIn(2, Account, "us"));

        Assert.Equal(ReplicaOutcome.Applied, outcome);
        Assert.Equal(["b1"], (await _host.LiveUsersAsync()).Select(u => u.UserId));
        var forgotten = await _host.UserAsync("a2");
        Assert.Equal((true, 5L, ""), (forgotten!.Deleted, forgotten.Version, forgotten.Email));
    }

    [Fact]
    public async Task ApplyUserChanged_AccountLeftRegion_IsIgnored()
    {
        await _host.ApplyAsync(AccountIn(2, Account, "us"));

        var outcome = await _host.ApplyAsync(User("a1", 1, Account));

        Assert.Equal(ReplicaOutcome.Ignored, outcome);
        Assert.Empty(await _host.LiveUsersAsync());
    }

    [Fact]
    public async Task ApplyUserChanged_AccountBackInRegion_SameVersionSnapshotRestoresUser()
    {
        await _host.ApplyAsync(AccountIn(1, Account, "eu"));
        await _host.ApplyAsync(User("a1", 3, Account));
        await _host.ApplyAsync(AccountIn(2, Account, "us"));
        await _host.ApplyAsync(AccountIn(3, Account, "us", "eu"));

        // The account's return is followed by its users' current snapshots (a resync): same version, same state.
        var outcome = await _host.ApplyAsync(User("a1", 3, Account));

        Assert.Equal(ReplicaOutcome.Applied, outcome);
        var stored = await _host.UserAsync("a1");
        Assert.Equal((false, 3L, "a1.v3@example.test"), (stored!.Deleted, stored.Version, stored.Email));
    }

    [Fact]
    public async Task ApplyAccountChanged_OlderVersion_IsIgnoredAndForgetsNobody()
    {
        await _host.ApplyAsync(AccountIn(5, Account, "eu"));
        await _host.ApplyAsync(User("a1", 1, Account));

        var outcome = await _host.ApplyAsync(AccountIn(4, Account, "us"));

        Assert.Equal(ReplicaOutcome.Ignored, outcome);
        Assert.Single(await _host.LiveUsersAsync());
    }

    [Fact]
    public async Task ApplySessionsRevoked_KeepsTheLatestTime()
    {
        await _host.ApplyAsync(User("u1", 1));
        var later = new DateTimeOffset(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);

        await _host.ApplyAsync(Revoked("u1", later));
        var outcome = await _host.ApplyAsync(Revoked("u1", later.AddMinutes(-5)));

        Assert.Equal(ReplicaOutcome.Ignored, outcome);
        Assert.Equal(later.UtcDateTime, (await _host.UserAsync("u1"))!.SessionsRevokedAt);
    }

    [Fact]
    public async Task ApplySessionsRevoked_BeforeFirstSnapshot_IsKeptWhenTheSnapshotArrives()
    {
        var at = new DateTimeOffset(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);

        await _host.ApplyAsync(Revoked("u1", at));
        Assert.Empty(await _host.LiveUsersAsync());
        await _host.ApplyAsync(User("u1", 1));

        var stored = await _host.UserAsync("u1");
        Assert.Equal((false, 1L, at.UtcDateTime), (stored!.Deleted, stored.Version, stored.SessionsRevokedAt));
    }

    [Fact]
    public async Task ApplyUserChanged_Versions1To50ConcurrentlyInRandomOrder_EndsAt50()
    {
        var versions = Enumerable.Range(1, 50).Select(v => (long)v).OrderBy(_ => Random.Shared.Next()).ToArray();

        // Each apply has its own scope (its own DbContext and connection), as concurrent consumers do.
        await Parallel.ForEachAsync(versions, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (version, _) => await _host.ApplyAsync(User("u1", version)));

        var stored = await _host.UserAsync("u1");
        Assert.Equal((50L, "u1.v50@example.test"), (stored!.Version, stored.Email));
    }

    [Fact]
    public async Task ApplyUserChangedAndDeleted_Concurrently_TheHigherVersionWins()
    {
        var messages = Enumerable.Range(1, 30)
            .Select(v => v == 30 ? (Func<Task>)(() => _host.ApplyAsync(Deleted("u1", 30))) : () => _host.ApplyAsync(User("u1", v)))
            .OrderBy(_ => Random.Shared.Next())
            .ToArray();

        await Parallel.ForEachAsync(messages, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (apply, _) => await apply());

        var stored = await _host.UserAsync("u1");
        Assert.Equal((true, 30L), (stored!.Deleted, stored.Version));
    }
    [Fact]
    public async Task ApplyUserChangedBatch_AppliesTheNewestPerUserAndRespectsStoredVersionsAndAwayAccounts()
    {
        await _host.ApplyAsync(User("stored", 6));
        await _host.ApplyAsync(AccountIn(1, OtherAccount, "us"));
        var batch = new[]
        {
            User("u1", 2), User("u1", 3), User("u1", 1), // the newest of a user in the batch wins, wherever it stands
            User("stored", 5),                           // older than the stored v6
            User("away", 1, account: OtherAccount),      // its account left the region
            User("new", 1),
        };

        var outcomes = await _host.WithWriterAsync(w => w.ApplyAsync(batch));

        Assert.Equal(
            [ReplicaOutcome.Ignored, ReplicaOutcome.Applied, ReplicaOutcome.Ignored, ReplicaOutcome.Ignored, ReplicaOutcome.Ignored, ReplicaOutcome.Applied],
            outcomes);
        Assert.Equal(["new", "stored", "u1"], (await _host.LiveUsersAsync()).Select(u => u.UserId));
        Assert.Equal((3L, "u1.v3@example.test"), ((await _host.UserAsync("u1"))!.Version, (await _host.UserAsync("u1"))!.Email));
        Assert.Equal(6L, (await _host.UserAsync("stored"))!.Version);
        Assert.Null(await _host.UserAsync("away"));
    }

    [Fact]
    public async Task ApplyUserChangedBatches_Concurrently_EndAtTheHighestVersionOfEachUser()
    {
        // 40 batches of 10 snapshots over 5 users, versions shuffled, applied from 8 scopes at once.
        var snapshots = Enumerable.Range(1, 400).Select(i => User($"u{i % 5}", i)).OrderBy(_ => Random.Shared.Next()).ToArray();

        await Parallel.ForEachAsync(snapshots.Chunk(10), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (batch, _) => await _host.WithWriterAsync(w => w.ApplyAsync(batch)));

        var users = await _host.LiveUsersAsync();
        Assert.Equal([400L, 396L, 397L, 398L, 399L], users.Select(u => u.Version));
    }
}
