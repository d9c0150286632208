using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Core.UnitTests.Operations;

/// <summary>The outbox interceptor as the operations' safety net: a user change a region would see, made without an operation.</summary>
public sealed class ChangesOutsideOperationsTests
{
    [Fact]
    public async Task SaveChanges_UserDisabledOutsideAnOperation_FailModeThrowsAndWritesNothing()
    {
        await using var host = new OperationHost(OutsideChangeMode.Fail);
        var userId = await host.UserAsync(await host.AccountAsync("eu"), AccountRoles.Member);
        await using var scope = host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        (await db.Users.SingleAsync(u => u.Id == userId)).Status = UserStatus.Disabled;

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());

        Assert.Contains(userId, failure.Message, StringComparison.Ordinal);
        await using var read = host.PlainContext();
        Assert.Equal(UserStatus.Active, await read.Users.Where(u => u.Id == userId).Select(u => u.Status).SingleAsync());
        Assert.False(await read.Outbox.AnyAsync());
    }

    [Fact]
    public async Task SaveChanges_UserDisabledOutsideAnOperation_LogModeStillWritesItsEvent()
    {
        await using var host = new OperationHost(OutsideChangeMode.Log);
        var userId = await host.UserAsync(await host.AccountAsync("eu"), AccountRoles.Member);
        await using var scope = host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        (await db.Users.SingleAsync(u => u.Id == userId)).Status = UserStatus.Disabled;

        await db.SaveChangesAsync();

        await using var read = host.PlainContext();
        Assert.Equal((UserStatus.Disabled, 2L), await read.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.Status, u.Version)).SingleAsync());
        Assert.Equal(["UserChanged"], await read.Outbox.Where(m => m.UserId == userId).Select(m => m.MessageType).ToListAsync());
        Assert.False(await read.AuditEntries.AnyAsync()); // what an escape loses, and why the Fail mode exists
    }

    [Fact]
    public async Task SaveChanges_AccountSuspendedOutsideAnOperation_FailModeThrowsAndWritesNothing()
    {
        await using var host = new OperationHost(OutsideChangeMode.Fail);
        var accountId = await host.AccountAsync("eu");
        await using var scope = host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        (await db.Accounts.SingleAsync(a => a.Id == accountId)).Status = AccountStatus.Suspended;

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());

        Assert.Contains(accountId.ToString(), failure.Message, StringComparison.Ordinal);
        await using var read = host.PlainContext();
        Assert.Equal((AccountStatus.Active, 1L), await read.Accounts.Where(a => a.Id == accountId).Select(a => ValueTuple.Create(a.Status, a.Version)).SingleAsync());
        Assert.False(await read.Outbox.AnyAsync());
    }

    [Fact]
    public async Task SaveChanges_AccountRegionAddedOutsideAnOperation_LogModeStillWritesItsEvents()
    {
        await using var host = new OperationHost(OutsideChangeMode.Log);
        var accountId = await host.AccountAsync("eu");
        var userId = await host.UserAsync(accountId, AccountRoles.Member);
        await host.AccountAsync("us"); // the region exists
        await using var scope = host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        db.Add(new AccountRegion { AccountId = accountId, RegionCode = "us" });

        await db.SaveChangesAsync();

        await using var read = host.PlainContext();
        Assert.Equal(2L, await read.Accounts.Where(a => a.Id == accountId).Select(a => a.Version).SingleAsync());
        Assert.Equal([("AccountChanged", "eu"), ("AccountChanged", "us"), ("UserChanged", "eu"), ("UserChanged", "us")],
            (await read.Outbox.ToListAsync()).Select(m => (m.MessageType, m.Region)).Order());
        Assert.Equal(("eu,us", 2L), await read.Users.Where(u => u.Id == userId).Select(u => ValueTuple.Create(u.RegionCodes, u.Version)).SingleAsync());
        Assert.False(await read.AuditEntries.AnyAsync()); // what an escape loses
    }

    [Fact]
    public async Task SaveChanges_OnlyTheFailedAttemptCountOutsideAnOperation_NoRegionSeesItSoNotCaught()
    {
        await using var host = new OperationHost(OutsideChangeMode.Fail);
        var userId = await host.UserAsync(await host.AccountAsync("eu"), AccountRoles.Member);
        await using var scope = host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        (await db.Users.SingleAsync(u => u.Id == userId)).AccessFailedCount = 1;

        Assert.Equal(1, await db.SaveChangesAsync());
    }
}
