using System.Net;
using System.Text.RegularExpressions;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The way into the admin console at <c>/admin</c>: Identity's own sign-in (the console is a first-party client, code +
/// PKCE), a second factor for every administrator (enrolment first), and who gets in: platform administrators see
/// every account, an account's admins only theirs, members nothing.
/// </summary>
public sealed class ConsoleSignInTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task SignIn_PlatformAdminWithoutFactor_EnrolsThenSeesEveryAccount()
    {
        // Arrange: a platform administrator with no second factor, and an account of somebody else's.
        var email = await Regions.CreatePlatformAdminAsync();
        var (_, _) = await Regions.CreateAccountUserAsync("member", accountName: "Zeta Console " + Guid.NewGuid().ToString("n")[..6]);

        // Act: opens the console; signs in at Identity, is sent to set up an authenticator, proves it.
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, email, Regions.UserPassword);

        // Assert: on the accounts page, signed in as that person, with a console cookie of its own (path /admin).
        await Expect(Page).ToHaveURLAsync(At(Regions.Identity, "/admin/accounts"));
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        await Expect(Console.SignedInAs).ToHaveTextAsync(email);
        await Expect(Page.Locator("#accounts")).ToContainTextAsync("Zeta Console");
        var cookie = Assert.Single(await Context.CookiesAsync([Regions.Identity.AbsoluteUri + "admin/"]), c => c.Name == "identity.console");
        Assert.Equal("/admin", cookie.Path);
        Assert.True(cookie.HttpOnly);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "accounts");

        // The console's pages carry the sign-in pages' policy: no inline script or style allowed.
        var page = await Page.GotoAsync(At(Regions.Identity, "/admin/accounts"));
        var csp = await page!.HeaderValueAsync("content-security-policy");
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("style-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);

        // Readable on a phone: nothing wider than the screen, the navigation still there.
        await Page.SetViewportSizeAsync(390, 844);
        await Expect(Console.Navigation).ToBeVisibleAsync();
        await ConsoleWorld.ScreenshotAsync(Page, "accounts-phone");
        Assert.True(await Page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "The page scrolls sideways on a phone.");
    }

    [Fact]
    public async Task Console_AccountSuspended_TheSameSessionsNextPageIsRefused()
    {
        // Arrange: an account admin signed in to the console.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: a platform administrator suspends the account (the operation the API and the console call).
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var tracked = await db.Accounts.SingleAsync(a => a.Id == account);
            var result = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
                .SuspendAsync(tracked, new Actor("test", null, null, null), CancellationToken.None);
            Assert.True(result.Succeeded);
        }

        // Assert: the same session's next page is refused at once (the actor is read at every request).
        var response = await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account}"));
        Assert.Equal((int)HttpStatusCode.Forbidden, response!.Status);
        await Expect(Console.Heading("Not allowed")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task SignIn_AccountAdmin_SeesOnlyTheirAccount_AnotherAccountsPageIsNotFound()
    {
        // Arrange: an admin of account A (with a second factor enrolled on the way in), and account B.
        var (accountA, adminA) = await Regions.CreateAccountUserAsync("admin");
        var (accountB, _) = await Regions.CreateAccountUserAsync("member");
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, adminA, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Assert: A's row only.
        await Expect(Page.Locator("#accounts tbody tr")).ToHaveCountAsync(1);
        await Expect(Page.Locator($"#accounts a[href='/admin/accounts/{accountA}']")).ToBeVisibleAsync();

        // Act: B's page, by its address.
        var response = await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountB}"));

        // Assert: as if it did not exist.
        Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        await Expect(Console.Heading("Not found")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // The same for its policy and its deletion page; the actions are platform administrators' (403 on their own).
        foreach (var path in new[] { "policy", "delete" })
        {
            Assert.Equal((int)HttpStatusCode.NotFound, (await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountB}/{path}")))!.Status);
        }

        Assert.Equal((int)HttpStatusCode.Forbidden, (await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/delete")))!.Status);
        Assert.Equal((int)HttpStatusCode.Forbidden, (await Page.GotoAsync(At(Regions.Identity, "/admin/accounts/new")))!.Status);

        // Their own account's policy is theirs to edit.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/policy"));
        await Expect(Console.Heading("Policy")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task SignIn_Member_IsRefused()
    {
        // Arrange: a member of an account (the console asks members for a second factor too, before refusing them).
        var (_, member) = await Regions.CreateAccountUserAsync("member");

        // Act
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, member, Regions.UserPassword);

        // Assert: refused with a page that says why, and no navigation into the console.
        await Expect(Console.Heading("Not allowed")).ToBeVisibleAsync();
        await Expect(Console.Alert).ToContainTextAsync("the console is for platform administrators");
        await Expect(Console.Navigation).ToHaveCountAsync(0);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "refused");
        var again = await Page.GotoAsync(At(Regions.Identity, "/admin/accounts"));
        Assert.Equal((int)HttpStatusCode.Forbidden, again!.Status);
    }

    [Fact]
    public async Task Console_SessionsRevoked_TheNextPageAsksForTheSignInAgain()
    {
        // Arrange: a platform administrator signed in to the console.
        var email = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, email, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: their sessions are revoked (a stolen laptop), through the operation the API calls.
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var user = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.SingleAsync(u => u.Email == email);
            var result = await scope.ServiceProvider.GetRequiredService<UserOperations>()
                .RevokeSessionsAsync(user, new Actor("test", null, null, null), CancellationToken.None);
            Assert.True(result.Succeeded);
        }

        // Assert: the console's next page is Identity's sign-in, not the console.
        await Page.GotoAsync(At(Regions.Identity, "/admin/accounts"));
        await ExpectLoginPageAsync();
        Assert.DoesNotContain(await Context.CookiesAsync([Regions.Identity.AbsoluteUri + "admin/"]), c => c.Name == "identity.console");
    }

    [Fact]
    public async Task SignIn_NonLocalReturnUrl_IsNotFollowed()
    {
        // Arrange: a platform administrator already signed in to the console.
        var email = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, email, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: a sign-in link whose return URL points to another site (and one that hides it as //host).
        foreach (var target in new[] { "https://evil.example/steal", "//evil.example/steal", "/\\evil.example" })
        {
            await Page.GotoAsync(At(Regions.Identity, "/admin/signin?returnUrl=" + Uri.EscapeDataString(target)));

            // Assert: back in the console, never at the other site.
            await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, "/admin"))));
            await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        }
    }
}
