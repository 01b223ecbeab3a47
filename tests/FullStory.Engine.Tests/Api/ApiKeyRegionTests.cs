using FullStory.Engine.Api;

namespace FullStory.Engine.Tests.Api;

/// <summary>The key's data-centre prefix decides the region; a prefix of that shape FullStory does not have is refused.</summary>
public class ApiKeyRegionTests
{
    [Theory]
    [InlineData("na1.AbCdEfGhIjKlMnOp", FullStoryRegion.Na1, "https://api.fullstory.com/")]
    [InlineData("NA1.AbCdEfGhIjKlMnOp", FullStoryRegion.Na1, "https://api.fullstory.com/")]
    [InlineData("eu1.AbCdEfGhIjKlMnOp", FullStoryRegion.Eu1, "https://api.eu1.fullstory.com/")]
    public void A_known_prefix_chooses_the_region(string key, FullStoryRegion region, string api)
    {
        using var session = new FullStorySession(new ApiKeyCredential(key));
        Assert.Equal(region, session.Region);
        Assert.Equal(api, session.ApiBaseUri.ToString());
        Assert.False(session.IsRegionAssumed);
    }

    [Theory]
    [InlineData("zz9.AbCdEfGhIjKlMnOp", "zz9")]
    [InlineData("us1.AbCdEfGhIjKlMnOp", "us1")]
    [InlineData("na2.AbCdEfGhIjKlMnOp", "na2")]
    [InlineData("eu12.AbCdEfGhIjKlMnOp", "eu12")]
    public void A_region_shaped_prefix_that_is_no_FullStory_region_is_refused_naming_the_real_ones(string key, string prefix)
    {
        var credential = new ApiKeyCredential(key);
        Assert.Equal(prefix, credential.RegionPrefix);
        Assert.True(credential.HasUnknownRegionPrefix);
        var ex = Assert.Throws<ArgumentException>(() => new FullStorySession(credential));
        Assert.Contains($"'{prefix}.'", ex.Message);
        Assert.Contains("na1 and eu1", ex.Message);
        Assert.Contains("-Region", ex.Message);
        Assert.DoesNotContain("AbCdEfGhIjKlMnOp", ex.Message);
    }

    [Fact]
    public void Region_or_a_base_uri_overrides_an_unknown_prefix()
    {
        using var withRegion = new FullStorySession(new ApiKeyCredential("zz9.AbCdEfGhIjKlMnOp"), FullStoryRegion.Eu1);
        Assert.Equal(FullStoryRegion.Eu1, withRegion.Region);
        Assert.False(withRegion.IsRegionAssumed);
        using var withBaseUri = new FullStorySession(new ApiKeyCredential("zz9.AbCdEfGhIjKlMnOp"), baseUri: new Uri("http://127.0.0.1:5000/"));
        Assert.Equal(new Uri("http://127.0.0.1:5000/"), withBaseUri.ApiBaseUri);
    }

    [Theory]
    [InlineData("AbCdEfGhIjKlMnOpQrSt")]        // no dot at all
    [InlineData("abcdefgh12.AbCdEfGhIjKlMnOp")]  // a dot, but not after a data-centre prefix
    [InlineData("n1.AbCdEfGhIjKlMnOp")]          // one letter only
    [InlineData("1na.AbCdEfGhIjKlMnOp")]
    public void A_key_without_a_region_prefix_is_sent_to_na1_and_says_it_was_assumed(string key)
    {
        var credential = new ApiKeyCredential(key);
        Assert.Null(credential.RegionPrefix);
        using var session = new FullStorySession(credential);
        Assert.Equal(FullStoryRegion.Na1, session.Region);
        Assert.True(session.IsRegionAssumed);
        using var chosen = new FullStorySession(credential, FullStoryRegion.Eu1);
        Assert.False(chosen.IsRegionAssumed);
    }

    [Theory]
    [InlineData("na1.S3cretKeyValue9876543210abcd3f2a", "na1.****3f2a")]
    [InlineData("na1.abcdefghijkl", "na1.****ijkl")]   // 12 characters after the prefix: the last four are shown
    [InlineData("na1.abcdefghijk", "na1.****")]        // fewer: nothing of it is shown
    [InlineData("abcdefghijklmnop", "****mnop")]
    public void The_masked_key_shows_the_prefix_and_the_last_four_characters_only_of_a_long_key(string key, string masked) =>
        Assert.Equal(masked, new ApiKeyCredential(key).Masked);
}
