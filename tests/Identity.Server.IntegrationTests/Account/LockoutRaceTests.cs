using System.Net;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// The account's lockout under simultaneous guesses at one user's password: every failure counts, the user is locked
/// out at the threshold, no request answers 5xx, and a right password checked after the lockout is refused.
/// </summary>
public abstract class LockoutRaceTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private const int Threshold = 5;

    /// <summary>A new member of a new account whose policy locks out after <see cref="Threshold"/> failures.</summary>
    private Task<string> UserAsync() =>
        fixture.UserInAccountWithPolicyAsync($$$"""{"lockout":{"maxFailedAttempts":{{{Threshold}}},"duration":"00:10:00"}}""", Password);

    [Fact]
    public async Task Login_ThirtySimultaneousGuesses_EveryFailureCountsAndTheLockoutHolds()
    {
        for (var round = 0; round < 3; round++)
        {
            var email = await UserAsync();
            var forms = new List<(BrowserSession Browser, string Page)>();
            for (var i = 0; i < 30; i++)
            {
                var browser = new BrowserSession(fixture.Server);
                forms.Add((browser, await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync()));
            }

            var responses = await Task.WhenAll(forms.Select((form, i) => form.Browser.SubmitAsync("/Account/Login", form.Page,
                new Dictionary<string, string> { ["Input.Email"] = email, ["Input.Password"] = i == 20 ? Password : $"Wrong-password-{i}" })));

            Assert.All(responses, response => Assert.True((int)response.StatusCode < 500, $"round {round}: {(int)response.StatusCode}"));
            await using var scope = fixture.Server.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var user = await db.Users.AsNoTracking().SingleAsync(u => u.Email == email);
            Assert.True(user.LockoutEnd > DateTimeOffset.UtcNow, $"round {round}: not locked out"); // the count reached the threshold
            var outcomes = await db.AuditEntries.AsNoTracking().Where(e => e.SubjectId == user.Id && e.EventType.StartsWith("signin."))
                .Select(e => e.EventType).ToListAsync();
            Assert.Equal(30, outcomes.Count); // every attempt answered and recorded
            Assert.Equal(responses[20].StatusCode == HttpStatusCode.Redirect ? 1 : 0, outcomes.Count(e => e == "signin.succeeded"));

            var afterwards = await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, Password);
            Assert.Contains("Invalid email or password.", await ResponseAssert.HtmlAsync(afterwards, HttpStatusCode.OK), StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A right password after some failures clears them on the stored row only: the sign-in does not save the user
    /// (no new version, no event), so a failure locking the user at the same moment cannot make its audit save fail.
    /// </summary>
    [Fact]
    public async Task Login_RightPasswordAfterFailures_SignsInWithoutRewritingTheUser()
    {
        var email = await UserAsync();
        for (var i = 0; i < Threshold - 2; i++)
        {
            await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, $"Wrong-password-{i}");
        }

        var before = await StoredAsync(email);
        var signedIn = await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, Password);
        var after = await StoredAsync(email);

        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal(Threshold - 2, before.AccessFailedCount);
        Assert.Equal(0, after.AccessFailedCount);
        Assert.Equal(before.Version, after.Version);
    }

    private async Task<ApplicationUser> StoredAsync(string email)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.AsNoTracking().SingleAsync(u => u.Email == email);
    }

    /// <summary>
    /// The interleaving that let a right password in: its request read the user, then concurrent wrong guesses locked
    /// the user out, then its password check succeeded.
    /// </summary>
    [Fact]
    public async Task CheckPassword_UserLockedOutByConcurrentGuessesSinceItWasRead_RightPasswordRefused()
    {
        var email = await UserAsync();
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var signIn = scope.ServiceProvider.GetRequiredService<SignInManager<ApplicationUser>>();
        signIn.Context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        var user = (await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByEmailAsync(email))!;
        for (var i = 0; i < Threshold; i++)
        {
            await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, $"Wrong-password-{i}");
        }

        var result = await signIn.CheckPasswordSignInAsync(user, Password, lockoutOnFailure: true);

        Assert.False(result.Succeeded);
        Assert.True(result.IsLockedOut);
    }
}

public sealed class SqliteLockoutRaceTests(ServerFixture<SqliteTestDatabase> fixture) : LockoutRaceTests<SqliteTestDatabase>(fixture);

public sealed class PostgresLockoutRaceTests(ServerFixture<PostgresTestDatabase> fixture) : LockoutRaceTests<PostgresTestDatabase>(fixture);
