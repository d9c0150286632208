using System.Text.RegularExpressions;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>A test with its own browser context (fresh cookies everywhere) and one page, against the shared world.</summary>
[Collection(RegionsSuite.Name)]
public abstract class BrowserTest(RegionsFixture regions) : IAsyncLifetime
{
    private IBrowserContext? _context;

    protected RegionsFixture Regions { get; } = regions;

    protected IBrowserContext Context => _context ?? throw new InvalidOperationException("No browser context yet.");

    protected IPage Page { get; private set; } = null!;

    protected NavigationLog Navigations { get; private set; } = null!;

    protected LoginPage Login => new(Page);

    protected ConsentPage Consent => new(Page);

    protected RegionPage Region => new(Page);

    public async Task InitializeAsync()
    {
        _context = await Regions.NewContextAsync();
        Page = await _context.NewPageAsync();
        Navigations = NavigationLog.Attach(Page);
    }

    public async Task DisposeAsync()
    {
        if (_context is not null)
        {
            await _context.CloseAsync();
        }
    }

    protected static string At(Uri app, string path) => new Uri(app, path).AbsoluteUri;

    /// <summary>Identity's sign-in page is showing (any query: the return URL).</summary>
    protected Task ExpectLoginPageAsync() =>
        Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, LoginPage.Path)) + "(\\?|$)"));

    /// <summary>The app's <c>/me</c> page shows the test user, signed in at that region.</summary>
    protected async Task ExpectSignedInAsync(Uri app, string region)
    {
        await Expect(Page).ToHaveURLAsync(At(app, "/me"));
        await Expect(Region.Who).ToContainTextAsync($"Signed in as {RegionsFixture.UserEmail} (");
        await Expect(Region.Who).ToContainTextAsync($"in region {region}");
    }

    /// <summary>The app's <c>/me</c> page shows <paramref name="email"/> signed in with these authentication methods.</summary>
    protected async Task ExpectSignedInAsync(Uri app, string email, string amr)
    {
        await Expect(Page).ToHaveURLAsync(At(app, "/me"));
        await Expect(Region.Who).ToContainTextAsync($"Signed in as {email} (");
        await Expect(Region.Amr).ToHaveTextAsync(amr);
    }

    /// <summary>A user with <see cref="RegionsFixture.UserPassword"/> signs in at the app with the password alone.</summary>
    protected async Task SignInWithPasswordAsync(Uri app, string email)
    {
        await Page.GotoAsync(At(app, "/me"));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Regions.UserPassword);
        await ExpectSignedInAsync(app, email, amr: "pwd");
    }

    /// <summary>Signs out at the app's <c>/me</c> and confirms at Identity (which ends the SSO session); back at the app.</summary>
    protected async Task SignOutAtAsync(Uri app)
    {
        await Page.GotoAsync(At(app, "/me"));
        await Region.SignOutButton.ClickAsync();
        // An assertion, not WaitForURL: a failure names the page the browser is on instead of only timing out.
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(Regions.Identity.AbsoluteUri)));
        await Region.SignOutButton.ClickAsync();
        await Expect(Page).ToHaveURLAsync(At(app, "/"));
    }

    /// <summary>Turns on an authenticator app for the signed-in user, on Identity's page.</summary>
    protected async Task<TotpEnrollment> EnrollTotpAsync()
    {
        await Page.GotoAsync(At(Regions.Identity, TotpPage.Path));
        return await new TotpPage(Page).EnrollAsync();
    }

    /// <summary>Opens the app's <c>/me</c> with no Identity session: signs in on Identity's page and lands back.</summary>
    protected async Task SignInAtAsync(Uri app, string region)
    {
        await Page.GotoAsync(At(app, "/me"));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(RegionsFixture.UserEmail, Regions.UserPassword);
        await ExpectSignedInAsync(app, region);
    }
}
