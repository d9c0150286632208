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
