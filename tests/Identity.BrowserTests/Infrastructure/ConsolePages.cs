using System.Text.RegularExpressions;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Users;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>The admin console as a person meets it: its layout, and the way in (Identity's sign-in with a second factor).</summary>
public sealed class ConsoleLayoutPage(IPage page)
{
    public const string Path = "/admin";

    public ILocator SignedInAs => page.Locator("#signed-in-as");

    public ILocator Navigation => page.GetByRole(AriaRole.Navigation, new() { Name = "Console" });

    public ILocator Heading(string name) => page.GetByRole(AriaRole.Heading, new() { Name = name, Level = 1 });

    public ILocator Notice => page.GetByRole(AriaRole.Status);

    public ILocator Alert => page.GetByRole(AriaRole.Alert);

    public ILocator SignOut => page.GetByRole(AriaRole.Button, new() { Name = "Sign out", Exact = true });

    public ILocator Button(string name) => page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });

    public ILocator Link(string name) => page.GetByRole(AriaRole.Link, new() { Name = name, Exact = true });

    public ILocator Field(string label) => page.GetByLabel(label, new() { Exact = true });
}

/// <summary>What console tests arrange behind the pages, through the operations (events, versions, audit), and the way in.</summary>
public static class ConsoleWorld
{
    /// <summary>Screenshots of the console's pages, kept with the test output for a reviewer: <c>console-screenshots/</c>.</summary>
    public static string ScreenshotFolder { get; } = System.IO.Path.Combine(AppContext.BaseDirectory, "console-screenshots");

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        await page.ScreenshotAsync(new() { Path = System.IO.Path.Combine(ScreenshotFolder, name + ".png"), FullPage = true });
    }

    /// <summary>
    /// A platform administrator (a person, no account), with the fixture's user password and no second factor, at the
    /// shared Identity or at <paramref name="identity"/>'s.
    /// </summary>
    public static async Task<string> CreatePlatformAdminAsync(this RegionsFixture regions, IServiceProvider? identity = null)
    {
        var email = $"platform-{Guid.NewGuid():n}@example.test";
        await using var scope = (identity ?? regions.IdentityServices).CreateAsyncScope();
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().CreateAsync(
            new NewUser(null, email, "Platform Admin", null, EmailConfirmed: true, PlatformAdmin: true), regions.UserPassword,
            new Actor("test", null, null, null), CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        return email;
    }

    /// <summary>A new account (no region) and a user of it with <paramref name="role"/> and the fixture's user password.</summary>
    public static async Task<(Guid Account, string Email)> CreateAccountUserAsync(this RegionsFixture regions, string role, string? accountName = null)
    {
        await using var scope = regions.IdentityServices.CreateAsyncScope();
        var actor = new Actor("test", null, null, null);
        var (made, account) = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
            .CreateAsync(accountName ?? "Acme " + Guid.NewGuid().ToString("n")[..8], [], actor, CancellationToken.None);
        Assert.True(made.Succeeded, made.ToString());
        var email = $"{role}-{Guid.NewGuid():n}@example.test";
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().CreateAsync(
            new NewUser(account!.Id, email, role, role, EmailConfirmed: true), regions.UserPassword, actor, CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        return (account.Id, email);
    }

    /// <summary>
    /// Opens the console with no session: Identity's sign-in, then (the console asks for a second factor) the
    /// authenticator set-up of a person who has none, then a code. Returns the enrolment, to sign in again.
    /// </summary>
    public static async Task<TotpEnrollment> SignInToConsoleEnrollingAsync(IPage page, Uri identity, string email, string password)
    {
        await page.GotoAsync(new Uri(identity, ConsoleLayoutPage.Path).AbsoluteUri);
        await Expect(page).ToHaveURLAsync(new Regex("^" + Regex.Escape(new Uri(identity, LoginPage.Path).AbsoluteUri)));
        await new LoginPage(page).SignInAsync(email, password);

        // Sent to enrol: the console's sign-in asks for a second factor and the person has none.
        await Expect(page).ToHaveURLAsync(new Regex("^" + Regex.Escape(new Uri(identity, TotpPage.Path).AbsoluteUri) + "\\?"));
        var totp = new TotpPage(page);
        var enrollment = await totp.EnrollAsync();
        await totp.Continue.ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("^" + Regex.Escape(new Uri(identity, SecondFactorPage.Path).AbsoluteUri)));
        await new SecondFactorPage(page).EnterCodeAsync(enrollment.NextCode());
        return enrollment;
    }
}
