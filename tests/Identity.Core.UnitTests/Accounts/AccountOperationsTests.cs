using System.Text.Json;
using Identity.Contracts;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Identity.Core.UnitTests.Operations;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Core.UnitTests.Accounts;

/// <summary>
/// Each account operation at its home: its rule, its version, its events and the regions they go to, its audit entry,
/// one SaveChanges in one transaction. Region <c>au</c> exists in every test and never gets anything.
/// </summary>
public sealed class AccountOperationsTests : IAsyncLifetime, IAsyncDisposable
{
    private readonly OperationHost _host = new();

    public async Task InitializeAsync() => await _host.AccountAsync("au"); // a bystander account and region

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask; // the host goes with the instance (IAsyncDisposable)

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task Create_NameAndKnownRegions_AccountSentToEachOfItsRegionsInOneWrite()
    {
        await _host.AccountAsync("eu", "us");

        await using var scope = _host.Scope();
        _host.Writes.Reset();
        var (result, account) = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
            .CreateAsync("  Acme  ", ["us", "eu", "us"], OperationHost.Admin, default);

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Accounts.Include(a => a.Regions).SingleAsync(a => a.Id == account!.Id);
        Assert.Equal(("Acme", AccountStatus.Active, 1L), (stored.Name, stored.Status, stored.Version));
        Assert.Equal(["eu", "us"], stored.Regions.Select(r => r.RegionCode).Order());
        var rows = await RowsAsync(db, stored.Id);
        Assert.Equal([("AccountChanged", "eu"), ("AccountChanged", "us")], rows.Select(r => (r.MessageType, r.Region)));
        var snapshot = Read<AccountChanged>(rows[0]);
        Assert.Equal(("Acme", "active", 1L), (snapshot.Name, snapshot.Status, snapshot.Version));
        Assert.Equal(["eu", "us"], snapshot.Regions);
        var audit = await db.AuditEntries.SingleAsync(a => a.AccountId == stored.Id);
        Assert.Equal(("account.created", "admin-1"), (audit.EventType, audit.ActorId));
    }

    [Fact]
    public async Task Create_BadNameAndUnknownRegion_InvalidNamingBothAndNothingWritten()
    {
        await using var scope = _host.Scope();
        var (result, account) = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
            .CreateAsync(" ", ["au", "zz"], OperationHost.Admin, default);

        Assert.Equal(OperationOutcome.Invalid, result.Outcome);
        Assert.Equal(["name", "regions"], result.Errors!.Keys.Order());
        Assert.Null(account);
        await using var db = _host.PlainContext();
        Assert.Equal(1, await db.Accounts.CountAsync());
        Assert.False(await db.AuditEntries.AnyAsync());
        Assert.False(await db.Outbox.AnyAsync());
    }

    [Fact]
    public async Task Update_NewName_RenamedVersionGrowsSnapshotToItsRegions()
    {
        var accountId = await _host.AccountAsync("eu");

        var result = await RunAsync(accountId, (o, a) => o.UpdateAsync(a, " Renamed ", OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(("Renamed", 2L), await db.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.Name, a.Version)).SingleAsync());
        var row = Assert.Single(await RowsAsync(db, accountId));
        Assert.Equal(("eu", "Renamed", 2L), (row.Region, Read<AccountChanged>(row).Name, Read<AccountChanged>(row).Version));
        var audit = await db.AuditEntries.SingleAsync(a => a.AccountId == accountId);
        Assert.Equal("account.updated", audit.EventType);
        Assert.Contains("\"after\":\"Renamed\"", audit.Details);
    }

    [Fact]
    public async Task Update_NoName_VersionGrowsAuditedNoEvent()
    {
        var accountId = await _host.AccountAsync("eu");

        var result = await RunAsync(accountId, (o, a) => o.UpdateAsync(a, null, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Accounts.SingleAsync(a => a.Id == accountId);
        Assert.Equal(2L, stored.Version); // a new ETag, as the API always answered a PATCH
        Assert.True(stored.UpdatedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.False(await db.Outbox.AnyAsync()); // nothing a region sees changed
        Assert.Equal("account.updated", (await db.AuditEntries.SingleAsync(a => a.AccountId == accountId)).EventType);
    }

    [Fact]
    public async Task Suspend_ActiveAccount_SuspendedSentToItsRegionsAndSessionsKept()
    {
        var accountId = await _host.AccountAsync("eu");
        var userId = await _host.UserAsync(accountId, AccountRoles.Owner);

        var result = await RunAsync(accountId, (o, a) => o.SuspendAsync(a, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((AccountStatus.Suspended, 2L), await db.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.Status, a.Version)).SingleAsync());
        var row = Assert.Single(await RowsAsync(db, accountId));
        Assert.Equal(("AccountChanged", "eu", "suspended"), (row.MessageType, row.Region, Read<AccountChanged>(row).Status));
        Assert.Equal(["valid"], await db.Set<OpenIddictEntityFrameworkCoreToken>().Where(t => t.Subject == userId).Select(t => t.Status).ToListAsync());
        Assert.Equal(1L, await db.Users.Where(u => u.Id == userId).Select(u => u.Version).SingleAsync());
        Assert.Equal("account.suspended", (await db.AuditEntries.SingleAsync(a => a.AccountId == accountId)).EventType);
    }

    [Fact]
    public async Task SuspendTwiceThenActivate_SecondSuspendWritesNothing_ActivateSendsActive()
    {
        var accountId = await _host.AccountAsync("eu");
        await RunAsync(accountId, (o, a) => o.SuspendAsync(a, OperationHost.Admin, default));

        var again = await RunAsync(accountId, (o, a) => o.SuspendAsync(a, OperationHost.Admin, default));
        Assert.Equal(OperationResult.Done, again);
        Assert.Equal((0, 0), (_host.Writes.SaveChanges, _host.Writes.Transactions));

        var result = await RunAsync(accountId, (o, a) => o.ActivateAsync(a, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal((AccountStatus.Active, 3L), await db.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.Status, a.Version)).SingleAsync());
        var rows = await RowsAsync(db, accountId);
        Assert.Equal([("suspended", 2L), ("active", 3L)], rows.Select(Read<AccountChanged>).Select(s => (s.Status, s.Version)));
        Assert.Equal(["account.suspended", "account.activated"],
            await db.AuditEntries.Where(a => a.AccountId == accountId).OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
    }

    [Fact]
    public async Task ChangeSettings_ValidDocument_StoredCompleteAndTheRegionsGetTheRequirement()
    {
        var accountId = await _host.AccountAsync("eu");

        var result = await RunAsync(accountId, (o, a) => o.ChangeSettingsAsync(a, """{"mfa":{"requirement":"requiredForEveryone"}}""", OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        var stored = await db.Accounts.SingleAsync(a => a.Id == accountId);
        Assert.Equal((2, 2L), (stored.SettingsVersion, stored.Version));
        Assert.Equal(12, JsonDocument.Parse(stored.Settings).RootElement.GetProperty("password").GetProperty("minimumLength").GetInt32());
        var row = Assert.Single(await RowsAsync(db, accountId));
        Assert.Equal(("eu", "requiredForEveryone"), (row.Region, Read<AccountChanged>(row).MfaRequirement));
        var audit = JsonDocument.Parse((await db.AuditEntries.SingleAsync(a => a.AccountId == accountId)).Details!).RootElement;
        Assert.Equal("{}", audit.GetProperty("before").GetRawText()); // as the account was created
        Assert.Equal("requiredForEveryone", audit.GetProperty("after").GetProperty("mfa").GetProperty("requirement").GetString());
    }

    [Fact]
    public async Task ChangeSettings_UnknownField_InvalidUnderSettingsAndNothingWritten()
    {
        var accountId = await _host.AccountAsync("eu");

        var result = await RunAsync(accountId, (o, a) => o.ChangeSettingsAsync(a, """{"mfa":{"colour":"blue"}}""", OperationHost.Admin, default));

        Assert.Equal(OperationOutcome.Invalid, result.Outcome);
        Assert.Equal(["settings.mfa.colour"], result.Errors!.Keys);
        await using var db = _host.PlainContext();
        Assert.Equal((1, 1L), await db.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.SettingsVersion, a.Version)).SingleAsync());
        Assert.False(await db.Outbox.AnyAsync());
        Assert.False(await db.AuditEntries.AnyAsync());
    }

    [Fact]
    public async Task EnableRegion_NewRegion_ItGetsTheAccountAndItsUsersWithNewVersions()
    {
        var accountId = await _host.AccountAsync("eu");
        await _host.AccountAsync("us");
        var userId = await _host.UserAsync(accountId, AccountRoles.Member);

        var result = await RunAsync(accountId, (o, a) => o.EnableRegionAsync(a, "us", OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(2L, await db.Accounts.Where(a => a.Id == accountId).Select(a => a.Version).SingleAsync());
        Assert.Equal((2L, "eu,us"), await db.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.Version, u.RegionCodes)).SingleAsync());
        Assert.Equal([("AccountChanged", "eu"), ("AccountChanged", "us"), ("UserChanged", "eu"), ("UserChanged", "us")],
            (await RowsAsync(db, accountId)).Select(r => (r.MessageType, r.Region)).Order());
        var audit = await db.AuditEntries.SingleAsync(a => a.AccountId == accountId);
        Assert.Equal(("account.region_enabled", "{\"region\":\"us\"}"), (audit.EventType, audit.Details));
    }

    [Fact]
    public async Task EnableRegion_UnknownOrAlreadyThere_InvalidOrLeftAsItIs()
    {
        var accountId = await _host.AccountAsync("eu");

        var unknown = await RunAsync(accountId, (o, a) => o.EnableRegionAsync(a, "zz", OperationHost.Admin, default));
        var already = await RunAsync(accountId, (o, a) => o.EnableRegionAsync(a, "eu", OperationHost.Admin, default));

        Assert.Equal(["region"], unknown.Errors!.Keys);
        Assert.Equal(OperationResult.Done, already);
        Assert.Equal(0, _host.Writes.SaveChanges);
        await using var db = _host.PlainContext();
        Assert.Equal(1L, await db.Accounts.Where(a => a.Id == accountId).Select(a => a.Version).SingleAsync());
        Assert.False(await db.Outbox.AnyAsync());
    }

    [Fact]
    public async Task DisableRegion_OneOfTwo_ItForgetsTheUsersTheOtherGetsNewSnapshots()
    {
        var accountId = await _host.AccountAsync("eu", "us");
        var userId = await _host.UserAsync(accountId, AccountRoles.Member);

        var result = await RunAsync(accountId, (o, a) => o.DisableRegionAsync(a, "us", OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.Equal(["eu"], await db.Set<AccountRegion>().Where(r => r.AccountId == accountId).Select(r => r.RegionCode).ToListAsync());
        var rows = await RowsAsync(db, accountId);
        Assert.Equal([("AccountChanged", "eu"), ("AccountChanged", "us"), ("UserChanged", "eu"), ("UserDeleted", "us")],
            rows.Select(r => (r.MessageType, r.Region)).Order());
        Assert.Equal(["eu"], Read<AccountChanged>(rows.Single(r => r is { MessageType: "AccountChanged", Region: "us" })).Regions);
        Assert.Equal(2L, Read<UserDeleted>(rows.Single(r => r.MessageType == "UserDeleted")).Version);
        Assert.Equal("account.region_disabled", (await db.AuditEntries.SingleAsync(a => a.AccountId == accountId)).EventType);
        Assert.Equal("eu", await db.Users.Where(u => u.Id == userId).Select(u => u.RegionCodes).SingleAsync());
    }

    [Fact]
    public async Task Delete_AccountWithUsers_GoneAndItsRegionsToldInOneWrite()
    {
        var accountId = await _host.AccountAsync("eu", "us");
        await _host.UserAsync(accountId, AccountRoles.Owner);
        await _host.UserAsync(accountId, AccountRoles.Member);

        var result = await RunAsync(accountId, (o, a) => o.DeleteAsync(a, OperationHost.Admin, default));

        Assert.Equal(OperationResult.Done, result);
        Assert.Equal((1, 1), (_host.Writes.SaveChanges, _host.Writes.Transactions));
        await using var db = _host.PlainContext();
        Assert.False(await db.Accounts.AnyAsync(a => a.Id == accountId));
        Assert.False(await db.Users.AnyAsync(u => u.AccountId == accountId));
        var rows = await RowsAsync(db, accountId);
        Assert.Equal([("AccountChanged", "eu"), ("AccountChanged", "us")], rows.Select(r => (r.MessageType, r.Region)));
        Assert.All(rows.Select(Read<AccountChanged>), s => Assert.Equal(("deleted", 0), (s.Status, s.Regions.Count)));
        Assert.Equal("account.deleted", (await db.AuditEntries.SingleAsync(a => a.AccountId == accountId)).EventType);
    }

    [Fact]
    public async Task Suspend_AccountChangedSinceLoaded_StaleAndNothingWritten()
    {
        var accountId = await _host.AccountAsync("eu");

        var result = await RunAsync(accountId, async (o, a) =>
        {
            await using (var other = _host.PlainContext())
            {
                await other.Accounts.Where(x => x.Id == accountId).ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, 5));
            }

            return await o.SuspendAsync(a, OperationHost.Admin, default);
        });

        Assert.Equal(OperationResult.Stale, result);
        await using var db = _host.PlainContext();
        Assert.Equal((AccountStatus.Active, 5L), await db.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.Status, a.Version)).SingleAsync());
        Assert.False(await db.Outbox.AnyAsync());
        Assert.False(await db.AuditEntries.AnyAsync());
    }

    /// <summary>Loads the account (with its regions) in a request-like scope and runs the operation there, counting only its writes.</summary>
    private async Task<OperationResult> RunAsync(Guid accountId, Func<AccountOperations, Account, Task<OperationResult>> operation)
    {
        await using var scope = _host.Scope();
        var account = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Accounts.Include(a => a.Regions).SingleAsync(a => a.Id == accountId);
        _host.Writes.Reset();
        return await operation(scope.ServiceProvider.GetRequiredService<AccountOperations>(), account);
    }

    private static async Task<List<OutboxMessage>> RowsAsync(AuthorityDbContext db, Guid accountId) =>
        await db.Outbox.Where(m => m.AccountId == accountId).OrderBy(m => m.Id).ToListAsync();

    private static T Read<T>(OutboxMessage row) => JsonSerializer.Deserialize<T>(row.Payload, OutboxEvents.JsonOptions)!;
}
