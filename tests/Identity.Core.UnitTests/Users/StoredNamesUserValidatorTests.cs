using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.UnitTests.Operations;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Core.UnitTests.Users;

/// <summary>
/// The user validator the authority runs (decision 0092): a user keeping the names it was loaded with is not looked up
/// again; a new name or email, a new user and a detached one are validated as ASP.NET Core Identity does.
/// </summary>
public sealed class StoredNamesUserValidatorTests : IAsyncDisposable
{
    private readonly OperationHost _host = new();

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task Validators_TheServersComposition_OnlyTheStoredNamesValidator()
    {
        await using var scope = _host.Scope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();

        Assert.IsType<StoredNamesUserValidator>(Assert.Single(users.UserValidators));
    }

    [Fact]
    public async Task Update_NamesKept_NotLookedUp_EvenWhereTheStoredDataWouldBeRefused()
    {
        // Two stored users with one email (written around the validator): a lookup would refuse either; keeping the
        // names, an update of one is not a lookup.
        var account = await _host.AccountAsync("eu");
        var first = await _host.UserAsync(account, AccountRoles.Member);
        var second = await _host.UserAsync(account, AccountRoles.Member);
        await SetEmailAroundTheValidatorAsync(second, await EmailOfAsync(first));

        await using var scope = _host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await db.Users.SingleAsync(u => u.Id == second);

        var result = await scope.ServiceProvider.GetRequiredService<UserOperations>()
            .ChangeProfileAsync(user, new ProfileChange(null, "Renamed", null), OperationHost.Admin, default);

        Assert.Equal(OperationResult.Done, result);
        await using var check = _host.PlainContext();
        Assert.Equal("Renamed", (await check.Users.SingleAsync(u => u.Id == second)).DisplayName);
    }

    [Fact]
    public async Task Update_EmailChangedToAnotherUsers_RefusedAsDuplicate()
    {
        var account = await _host.AccountAsync("eu");
        var first = await _host.UserAsync(account, AccountRoles.Member);
        var second = await _host.UserAsync(account, AccountRoles.Member);

        await using var scope = _host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await db.Users.SingleAsync(u => u.Id == second);
        user.Email = (await EmailOfAsync(first)).ToUpperInvariant();

        var result = await users.UserValidators.Single().ValidateAsync(users, user);

        Assert.Contains(result.Errors, e => e.Code == nameof(IdentityErrorDescriber.DuplicateEmail));
    }

    [Fact]
    public async Task Update_UserNameChangedToAnInvalidOne_Refused()
    {
        var account = await _host.AccountAsync("eu");
        var id = await _host.UserAsync(account, AccountRoles.Member);

        await using var scope = _host.Scope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await db.Users.SingleAsync(u => u.Id == id);
        user.UserName = "no spaces allowed";

        var result = await users.UserValidators.Single().ValidateAsync(users, user);

        Assert.Contains(result.Errors, e => e.Code == nameof(IdentityErrorDescriber.InvalidUserName));
    }

    [Fact]
    public async Task Create_EmailOfAStoredUser_RefusedAsDuplicate()
    {
        var account = await _host.AccountAsync("eu");
        var email = await EmailOfAsync(await _host.UserAsync(account, AccountRoles.Member));

        await using var scope = _host.Scope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var result = await users.CreateAsync(new ApplicationUser { UserName = "other-" + email, Email = email });

        Assert.Contains(result.Errors, e => e.Code == nameof(IdentityErrorDescriber.DuplicateEmail));
    }

    private async Task<string> EmailOfAsync(string userId)
    {
        await using var db = _host.PlainContext();
        return (await db.Users.SingleAsync(u => u.Id == userId)).Email!;
    }

    private async Task SetEmailAroundTheValidatorAsync(string userId, string email)
    {
        await using var db = _host.PlainContext();
        await db.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s
            .SetProperty(u => u.Email, email).SetProperty(u => u.NormalizedEmail, email.ToUpperInvariant()));
    }
}
