using System.Net.Http.Json;
using System.Text.Json;
using Identity.BrowserTests.Infrastructure;
using Identity.Server.IntegrationTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>
/// Email verification as a person meets it in Chromium: an admin creates them through the admin API, the regional app
/// they sign in to sees <c>email_verified</c> false; they open the link from the email (read at the test's SMTP
/// server), confirm, and the app's next sign-in sees true. The used link gets a clear page.
/// </summary>
public sealed class EmailVerificationBrowserTests(RegionsFixture regions) : BrowserTest(regions)
{
    [Fact]
    public async Task VerificationLink_PersonConfirmsFromTheEmail_RegionalAppSeesEmailVerifiedFalseThenTrue()
    {
        // Arrange: a member created through the admin API; the email arrives; the app signs them in, unverified.
        var email = await CreateMemberAsync();
        var link = TestSmtpServer.LinkIn(await Regions.Smtp.WaitForAsync(email), "/Account/VerifyEmail");
        await SignInWithPasswordAsync(Regions.Eu, email);
        await Expect(Region.EmailVerified).ToHaveTextAsync("false");

        // Act: the person opens the link and confirms.
        await Page.GotoAsync(link.AbsoluteUri);
        await Expect(Page.GetByLabel("Email", new() { Exact = true })).ToHaveValueAsync(email);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Confirm this address" }).ClickAsync();

        // Assert: confirmed; the app's next sign-in gets an ID token with email_verified true.
        await Expect(Page.GetByRole(AriaRole.Heading, new() { Level = 2 })).ToHaveTextAsync("Your address is confirmed");
        await SignOutAtAsync(Regions.Eu);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await Expect(Region.EmailVerified).ToHaveTextAsync("true");

        // The link worked once.
        await Page.GotoAsync(link.AbsoluteUri);
        await Expect(Page.GetByRole(AriaRole.Heading, new() { Level = 2 })).ToHaveTextAsync("This link cannot be used");
        await Expect(Page.GetByRole(AriaRole.Button, new() { Name = "Confirm this address" })).ToHaveCountAsync(0);
    }

    /// <summary>A member of a new account, created through the admin API with the fixture's password; returns the email.</summary>
    private async Task<string> CreateMemberAsync()
    {
        using var admin = await Regions.PlatformAdminAsync();
        var account = await admin.PostAsJsonAsync("/admin/v1/accounts", new { name = "Verified Co" });
        account.EnsureSuccessStatusCode();
        var id = JsonDocument.Parse(await account.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        var email = $"verify-{Guid.NewGuid():n}@example.test";
        (await admin.PostAsJsonAsync($"/admin/v1/accounts/{id}/users", new { email, role = "member", password = Regions.UserPassword }))
            .EnsureSuccessStatusCode();
        return email;
    }
}
