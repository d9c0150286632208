using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>
/// An invitation as a person meets it in Chromium: an admin invites through the admin API, the email arrives at the
/// test's SMTP server, its link opens the page, the account's policy refuses a short password and accepts a good one,
/// the second factor the account requires is enrolled, and the person is signed in at a regional app. Used and
/// expired links are refused with a clear page.
/// </summary>
public sealed class InvitationBrowserTests(RegionsFixture regions) : BrowserTest(regions)
{
    private const string Password = "Correct-Horse-Battery-9";

    [Fact]
    public async Task Invitation_EmailedLink_PolicyRefusesThenAccepts_MfaEnrolled_SignedInAtTheRegionalApp_LinkUsedOnce()
    {
        // Arrange: an admin invites a member of an account that requires a second factor of everyone.
        var email = await InviteAsync("""{"mfa":{"requirement":"requiredForEveryone"},"password":{"minimumLength":12}}""", sendEmail: true);
        var link = TestSmtpServer.LinkIn(await Regions.Smtp.WaitForAsync(email), "/Account/Invitation");

        // Act: the link; a password the policy refuses, then one it accepts.
        await Page.GotoAsync(link.AbsoluteUri);
        await Expect(Page.GetByLabel("Email", new() { Exact = true })).ToHaveValueAsync(email);
        await SetPasswordAsync("short-pw-1");
        await Expect(Page.Locator(".field-error").First).ToContainTextAsync("Use at least 12 characters.");
        await SetPasswordAsync(Password);

        // Assert: enrolment first, then the regional app signs the person in with both factors.
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, TotpPage.Path)) + "\\?"));
        var enrollment = await new TotpPage(Page).EnrollAsync();
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, SecondFactorPage.Path))));
        await new SecondFactorPage(Page).EnterCodeAsync(enrollment.NextCode());
        await ExpectSignedInAsync(Regions.Eu, email, amr: "pwd otp mfa");

        // The link worked once.
        await Page.GotoAsync(link.AbsoluteUri);
        await Expect(Page.GetByRole(AriaRole.Heading, new() { Level = 2 })).ToHaveTextAsync("This invitation cannot be used");
    }

    [Fact]
    public async Task Invitation_ExpiredLink_ClearPageNoForm()
    {
        var email = await InviteAsync("{}", sendEmail: true);
        var link = TestSmtpServer.LinkIn(await Regions.Smtp.WaitForAsync(email), "/Account/Invitation");
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var userId = await db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
            await db.UserLinks.Where(l => l.UserId == userId).ExecuteUpdateAsync(l => l.SetProperty(x => x.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        var response = await Page.GotoAsync(link.AbsoluteUri);

        Assert.Equal(200, response!.Status);
        await Expect(Page.GetByRole(AriaRole.Heading, new() { Level = 2 })).ToHaveTextAsync("This invitation cannot be used");
        await Expect(Page.GetByLabel("New password")).ToHaveCountAsync(0);
    }

    private async Task SetPasswordAsync(string password)
    {
        await Page.GetByLabel("New password", new() { Exact = true }).FillAsync(password);
        await Page.GetByLabel("Confirm new password", new() { Exact = true }).FillAsync(password);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Set the password and sign in" }).ClickAsync();
    }

    /// <summary>A new account with these settings, and a member invited into it through the admin API; returns the email.</summary>
    private async Task<string> InviteAsync(string policyJson, bool sendEmail)
    {
        using var admin = await Regions.PlatformAdminAsync();
        var account = await ReadAsync(await admin.PostAsJsonAsync("/admin/v1/accounts", new { name = "Invited Co" }));
        var id = account.GetProperty("id").GetString();
        var etag = (await admin.GetAsync($"/admin/v1/accounts/{id}")).Headers.ETag!.Tag;
        using var settings = new HttpRequestMessage(HttpMethod.Put, $"/admin/v1/accounts/{id}/settings")
        {
            Content = new StringContent(policyJson, System.Text.Encoding.UTF8, "application/json"),
        };
        settings.Headers.TryAddWithoutValidation("If-Match", etag);
        await ReadAsync(await admin.SendAsync(settings));
        var email = $"invited-{Guid.NewGuid():n}@example.test";
        await ReadAsync(await admin.PostAsJsonAsync($"/admin/v1/accounts/{id}/users", new { email, role = "member", sendEmail }));
        return email;
    }

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
