using Identity.Region.Replica;
using Identity.Region.Resync;
using Identity.Region.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Identity.Region.Tests.Infrastructure.Events;

namespace Identity.Region.Tests.Resync;

/// <summary>The resync against a test double of Identity on a real socket.</summary>
public sealed class ReplicaResyncTests : IAsyncLifetime
{
    private FakeIdentity _identity = null!;

    public async Task InitializeAsync() => _identity = await FakeIdentity.StartAsync();

    public async Task DisposeAsync() => await _identity.DisposeAsync();

    [Fact]
    public async Task RunAsync_EmptyReplica_RebuildsItFollowingTheCursors()
    {
        _identity.Users.AddRange(Enumerable.Range(1, 5).Select(i => User($"u{i}", i)));
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority, pageSize: 2);

        var result = await ResyncAsync(host);

        Assert.Equal(new ReplicaResyncResult(Users: 5, Pages: 3, Applied: 5, Removed: 0), result);
        Assert.Equal(["u1", "u2", "u3", "u4", "u5"], (await host.LiveUsersAsync()).Select(u => u.UserId));
        Assert.Equal(4, (await host.UserAsync("u4"))!.Version);
        Assert.Equal([null, "u2", "u4"], _identity.SyncRequests.Select(r => r.After));
        Assert.All(_identity.SyncRequests, r => Assert.Equal("2", r.Limit));
        var state = await host.InScopeAsync(db => db.ReplicaState.SingleAsync());
        Assert.Equal(5, state.LastFullResyncUsers);
        Assert.NotNull(state.LastFullResyncAt);
    }

    [Fact]
    public async Task RunAsync_EverySyncRequest_SendsTheBearerToken()
    {
        _identity.Users.AddRange(Enumerable.Range(1, 3).Select(i => User($"u{i}", 1)));
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority, pageSize: 1);

        await ResyncAsync(host);

        var token = Assert.Single(_identity.IssuedTokens);
        Assert.Equal(3, _identity.SyncRequests.Count);
        Assert.All(_identity.SyncRequests, r => Assert.Equal("Bearer " + token, r.Authorization));
    }

    [Fact]
    public async Task RunAsync_TokenExpiredDuringSync_GetsANewTokenAndGoesOn()
    {
        _identity.Users.AddRange(Enumerable.Range(1, 2).Select(i => User($"u{i}", 1)));
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority);
        _identity.ExpireTokensOnce = true;

        var result = await ResyncAsync(host);

        Assert.Equal(2, result.Users);
        Assert.Equal(["token-2"], _identity.IssuedTokens);
    }

    [Fact]
    public async Task RunAsync_UsersAbsentFromTheSync_AreRemoved()
    {
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority, pageSize: 2);
        foreach (var id in new[] { "u1", "u2", "u3", "u4" })
        {
            await host.ApplyAsync(User(id, 1));
        }

        _identity.Users.AddRange([User("u1", 1), User("u3", 2), User("u5", 1)]);

        var result = await ResyncAsync(host);

        Assert.Equal(2, result.Removed);
        Assert.Equal(["u1", "u3", "u5"], (await host.LiveUsersAsync()).Select(u => u.UserId));
        Assert.Equal(2, (await host.UserAsync("u3"))!.Version);
        var removed = await host.UserAsync("u4");
        Assert.Equal((true, 1L), (removed!.Deleted, removed.Version)); // a tombstone: an older snapshot cannot bring it back
        Assert.Equal(ReplicaOutcome.Ignored, await host.ApplyAsync(User("u4", 1)));
    }

    [Fact]
    public async Task RunAsync_UserCreatedByAnEventDuringTheSync_IsKept()
    {
        _identity.Users.AddRange([User("u1", 1), User("u2", 1), User("u3", 1)]);
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority, pageSize: 1);
        // "u0" was created at Identity after the first page (whose range covers it) was read; its event arrives now.
        _identity.BeforePage = async page =>
        {
            if (page == 2)
            {
                await host.ApplyAsync(User("u0", 1));
            }
        };

        var result = await ResyncAsync(host);

        Assert.Equal(0, result.Removed);
        Assert.Equal(["u0", "u1", "u2", "u3"], (await host.LiveUsersAsync()).Select(u => u.UserId));
    }

    [Fact]
    public async Task RunAsync_WrongClientSecret_FailsNamingTheClientNotTheSecret()
    {
        await using var host = await ReplicaHost.CreateAsync(_identity.Authority,
            configure: builder => builder.Configuration["IdentityRegion:ClientSecret"] = "wrong-secret");

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => ResyncAsync(host));

        Assert.Contains(ReplicaHost.ClientId, error.Message);
        Assert.Contains("invalid_client", error.Message);
        Assert.DoesNotContain("wrong-secret", error.Message);
    }

    [Fact]
    public async Task HostStart_ResyncOnStart_MigratesAndFillsTheReplica()
    {
        _identity.Users.AddRange([User("u1", 1), User("u2", 3)]);
        await using var host = ReplicaHost.CreateUnstarted(_identity.Authority, resyncOnStart: true);

        await host.App.StartAsync();
        try
        {
            await host.EventuallyAsync(
                () => host.InScopeAsync(db => db.ReplicaState.AnyAsync(s => s.LastFullResyncAt != null)), "the first resync is recorded");

            Assert.Equal(["u1", "u2"], (await host.LiveUsersAsync()).Select(u => u.UserId));
        }
        finally
        {
            await host.App.StopAsync();
        }
    }

    private static async Task<ReplicaResyncResult> ResyncAsync(ReplicaHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<IReplicaResync>().RunAsync();
    }
}
